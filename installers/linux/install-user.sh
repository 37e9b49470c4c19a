#!/bin/sh
# Install Cove for this user only (no root): run it from the unpacked cove-<version>-linux-*.tar.gz.
#
#   ./install-user.sh              install (or upgrade in place) into ~/.local
#   ./install-user.sh --uninstall  remove the program, its menu entry and icon
#
# The program goes to ~/.local/opt/cove, the command to ~/.local/bin/cove, the menu entry to
# ~/.local/share/applications and the icon to ~/.local/share/icons. Your conversations, settings
# and models (~/.local/share/Cove, ~/.config/Cove) are never touched, by upgrades or by
# --uninstall: delete those folders yourself to remove them.
set -eu

HERE="$(cd "$(dirname "$0")" && pwd)"
PREFIX="${COVE_PREFIX:-$HOME/.local}"
DATA_HOME="${XDG_DATA_HOME:-$HOME/.local/share}"
APP_DIR="$PREFIX/opt/cove"
BIN="$PREFIX/bin/cove"
DESKTOP="$DATA_HOME/applications/cove.desktop"
ICON_SVG="$DATA_HOME/icons/hicolor/scalable/apps/cove.svg"
ICON_PNG="$DATA_HOME/icons/hicolor/256x256/apps/cove.png"

refresh_menus() {
    if command -v update-desktop-database >/dev/null 2>&1; then
        update-desktop-database -q "$DATA_HOME/applications" 2>/dev/null || true
    fi
    if command -v gtk-update-icon-cache >/dev/null 2>&1; then
        gtk-update-icon-cache -q -t "$DATA_HOME/icons/hicolor" 2>/dev/null || true
    fi
}

if [ "${1:-}" = "--uninstall" ]; then
    rm -rf "$APP_DIR"
    rm -f "$BIN" "$DESKTOP" "$ICON_SVG" "$ICON_PNG"
    refresh_menus
    echo "Cove removed. Your conversations and settings are still in $DATA_HOME/Cove and ${XDG_CONFIG_HOME:-$HOME/.config}/Cove."
    exit 0
fi

[ -x "$HERE/cove/cove" ] || { echo "install-user.sh: run me from the unpacked Cove folder" >&2; exit 1; }
mkdir -p "$PREFIX/opt" "$PREFIX/bin" "$(dirname "$DESKTOP")" "$(dirname "$ICON_SVG")" "$(dirname "$ICON_PNG")"
# Upgrade in place: the new copy is complete before the old one goes.
rm -rf "$APP_DIR.new"
cp -a "$HERE/cove" "$APP_DIR.new"
rm -rf "$APP_DIR"
mv "$APP_DIR.new" "$APP_DIR"
ln -sf "$APP_DIR/cove" "$BIN"
sed "s|^Exec=.*|Exec=\"$APP_DIR/cove\"|" "$HERE/cove.desktop" >"$DESKTOP"
cp "$HERE/cove.svg" "$ICON_SVG"
[ -f "$HERE/cove.png" ] && cp "$HERE/cove.png" "$ICON_PNG"
refresh_menus
echo "Cove installed in $APP_DIR. Start it from your applications menu, or run: $BIN"
case ":$PATH:" in *":$PREFIX/bin:"*) ;; *) echo "(Add $PREFIX/bin to your PATH to type 'cove' in a terminal.)" ;; esac
