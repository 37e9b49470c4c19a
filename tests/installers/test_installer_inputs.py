"""What the Windows and macOS installer scripts are built from (they cannot run on Linux): the
files they reference exist, their versions come from pyproject.toml, the Inno Setup script
installs per user with a fixed AppId, the plists are valid and agree with build.spec. Also the
frozen-bundle rules of the core: where the starter model and the data folder are, how the
quarantine probe starts its child."""

from __future__ import annotations

import plistlib
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path, PureWindowsPath

import pytest

from tests.conftest import REPO

INSTALLERS = REPO / "installers"
ISS = INSTALLERS / "windows" / "cove.iss"
PS1 = INSTALLERS / "windows" / "build.ps1"
MAC_BUILD = INSTALLERS / "macos" / "build.sh"
INFO_PLIST = INSTALLERS / "macos" / "Info.plist"
ENTITLEMENTS = INSTALLERS / "macos" / "entitlements.plist"
SPEC = REPO / "build.spec"


def project_version() -> str:
    return tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]


def spec_constant(name: str) -> str:
    match = re.search(rf'^{name}\s*=\s*"([^"]+)"', SPEC.read_text(), re.M)
    assert match, f"build.spec defines no {name}"
    return match.group(1)


def iss_setup() -> dict[str, str]:
    """The [Setup] section's directives (last one wins, as in Inno Setup)."""
    text = ISS.read_text()
    section = re.search(r"^\[Setup\]\s*$(.*?)^\[", text, re.S | re.M).group(1)
    values = {}
    for line in section.splitlines():
        line = line.strip()
        if line and not line.startswith(";") and "=" in line:
            key, value = line.split("=", 1)
            values[key.strip()] = value.strip()
    return values


def iss_defines() -> dict[str, str]:
    return dict(re.findall(r'^#define\s+(\w+)\s+"([^"]*)"', ISS.read_text(), re.M))


def iss_path(value: str) -> Path:
    """A path in the .iss (relative to the script's folder, preprocessor defines expanded)."""
    for name, text in iss_defines().items():
        value = value.replace("{#" + name + "}", text)
    return (ISS.parent / Path(*PureWindowsPath(value).parts)).resolve()


# -- versions -------------------------------------------------------------------------------------
def test_the_app_version_is_the_project_version():
    from desktop import __version__

    assert __version__ == project_version()
    assert spec_constant("STARTER_FILE") == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert "desktop\" / \"__init__.py" in SPEC.read_text()  # the bundle's version is desktop.__version__


def test_build_ps1_reads_the_version_from_pyproject_and_passes_it_to_inno_setup():
    text = PS1.read_text()
    pattern = re.search(r"\$VersionPattern\s*=\s*'([^']+)'", text).group(1)
    # PowerShell's Select-String works line by line, like re.M here.
    found = re.search(pattern, (REPO / "pyproject.toml").read_text(), re.M)
    assert found and found.group(1) == project_version()
    assert '"pyproject.toml"' in text
    assert '"/DAppVersion=$Version"' in text and r'"installers\windows\cove.iss"' in text


def test_inno_script_takes_its_version_only_from_the_build_script():
    text = ISS.read_text()
    assert re.search(r"^#ifndef AppVersion\s*\n\s*#error", text, re.M)
    setup = iss_setup()
    assert setup["AppVersion"] == "{#AppVersion}" and setup["VersionInfoVersion"] == "{#AppVersion}"
    assert not re.search(r"\b\d+\.\d+\.\d+\b", text), "a hard-coded version in cove.iss"


def test_mac_info_plist_and_build_spec_agree_on_identity_and_version():
    info = plistlib.loads(INFO_PLIST.read_bytes())
    assert info["CFBundleIdentifier"] == spec_constant("BUNDLE_IDENTIFIER")
    assert re.fullmatch(r"[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", info["CFBundleIdentifier"])
    assert info["CFBundleExecutable"] == spec_constant("APP_NAME") == "cove"
    assert info["CFBundleShortVersionString"] == info["CFBundleVersion"] == project_version()
    assert info["CFBundlePackageType"] == "APPL" and info["CFBundleName"] == "Cove"
    assert info["NSHighResolutionCapable"] is True and info["LSMinimumSystemVersion"]
    assert spec_constant("MAC_APP_NAME") == "Cove.app"


# -- Windows: Inno Setup -----------------------------------------------------------------------------
def test_inno_setup_installs_per_user_with_a_fixed_app_id():
    setup = iss_setup()
    assert setup["PrivilegesRequired"] == "lowest"
    assert "PrivilegesRequiredOverridesAllowed" not in setup  # never an all-users (admin) install
    assert setup["DefaultDirName"] == r"{localappdata}\Programs\Cove"
    # A fixed GUID ("{{" escapes the brace in Inno Setup): how an upgrade finds the old install.
    assert re.fullmatch(r"\{\{[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}\}", setup["AppId"])
    assert setup["UninstallDisplayIcon"] == r"{app}\{#AppExeName}"
    assert iss_defines()["AppExeName"] == "cove.exe"  # PyInstaller's EXE name + .exe


def test_inno_setup_has_a_start_menu_entry_uninstaller_and_replaces_old_files_on_upgrade():
    text = ISS.read_text()
    assert re.search(r'^Name: "\{autoprograms\}\\\{#AppName\}"; Filename: "\{app\}\\\{#AppExeName\}"', text, re.M)
    assert "Uninstallable=no" not in text and "CreateUninstallRegKey=no" not in text
    assert re.search(r'^Type: filesandordirs; Name: "\{app\}\\_internal"', text, re.M)
    # Nothing the uninstaller deletes is user data (%LOCALAPPDATA%\Cove, outside {app}).
    uninstall = re.search(r"^\[UninstallDelete\](.*?)(^\[|\Z)", text, re.S | re.M)
    assert uninstall is None or "{localappdata}\\Cove" not in uninstall.group(1)


def test_inno_setup_files_come_from_what_build_ps1_makes():
    ps1 = PS1.read_text()
    setup = iss_setup()
    bundle = iss_path(iss_defines()["BundleDir"])
    assert bundle == REPO / "dist" / spec_constant("APP_NAME")  # PyInstaller's COLLECT output
    assert "--distpath dist" in ps1 and "build.spec" in ps1
    assert re.search(r'^Source: "\{#BundleDir\}\\\*"; DestDir: "\{app\}"; .*recursesubdirs', ISS.read_text(), re.M)
    icon = iss_path(setup["SetupIconFile"])
    assert icon == REPO / "build" / "icons" / "cove.ico" and r"build\icons\cove.ico" in ps1
    assert iss_path(setup["OutputDir"]) == REPO / "dist"


def test_build_ps1_references_files_that_exist():
    ps1 = PS1.read_text()
    for name in re.findall(r"(?<![\w\\])((?:installers|resources)\\[\w\\.-]+\.\w+)", ps1):
        if not name.startswith("build\\"):
            assert (REPO / Path(*PureWindowsPath(name).parts)).is_file(), name
    assert (REPO / "build.spec").is_file()


# -- macOS ----------------------------------------------------------------------------------------
def test_entitlements_are_a_valid_plist_with_only_what_the_hardened_runtime_needs():
    entitlements = plistlib.loads(ENTITLEMENTS.read_bytes())
    assert entitlements == {
        "com.apple.security.cs.allow-unsigned-executable-memory": True,  # ctypes callbacks (libffi)
        "com.apple.security.cs.disable-library-validation": True,        # bundled dylibs, dlopen'd backends
    }
    assert "com.apple.security.cs.allow-jit" not in entitlements


def test_macos_build_script_signs_notarises_and_makes_a_dmg_from_existing_inputs():
    text = MAC_BUILD.read_text()
    for needed in ("--options runtime", "--entitlements", "xcrun notarytool submit", "--wait",
                   "xcrun stapler staple", "hdiutil create", "--self-test", "build.spec"):
        assert needed in text, needed
    for name in re.findall(r"(?<![\w/])((?:installers|resources)/[\w/.-]+\.\w+)", text):
        assert (REPO / name).is_file(), name
    assert 'APP="dist/Cove.app"' in text
    assert "sed -n 's/^version = " in text  # the .dmg's name carries pyproject's version


def test_build_spec_references_files_that_exist():
    text = SPEC.read_text()
    for parts in re.findall(r'REPO((?: / "[^"]+")+)', text):
        path = REPO.joinpath(*re.findall(r'"([^"]+)"', parts))
        if path.name not in ("build",):
            assert path.exists(), path
    assert (REPO / "resources" / "cove.svg").is_file() and (REPO / "resources" / "cove.desktop").is_file()


MAIN_CATEGORIES = {"AudioVideo", "Audio", "Video", "Development", "Education", "Game", "Graphics", "Network",
                   "Office", "Science", "Settings", "System", "Utility"}


def test_desktop_entry_is_valid_for_menus():
    path = REPO / "resources" / "cove.desktop"
    entry = dict(line.split("=", 1) for line in path.read_text().splitlines() if "=" in line)
    assert entry["Type"] == "Application" and entry["Exec"].split()[0] == "cove" and entry["Icon"] == "cove"
    categories = set(entry["Categories"].rstrip(";").split(";"))
    assert len(categories & MAIN_CATEGORIES) == 1  # listed once, under one menu
    if shutil.which("desktop-file-validate"):  # desktop-file-utils (.ci/run installs it)
        result = subprocess.run(["desktop-file-validate", str(path)], capture_output=True, text=True)
        assert result.returncode == 0 and not result.stdout.strip(), result.stdout + result.stderr


# -- the frozen bundle's rules in the core --------------------------------------------------------
@pytest.fixture
def frozen(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Pretend to be a PyInstaller bundle installed in tmp_path/install."""
    install = tmp_path / "install"
    meipass = install / "_internal"
    (meipass / "models").mkdir(parents=True)
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    monkeypatch.setattr(sys, "_MEIPASS", str(meipass), raising=False)
    monkeypatch.setattr(sys, "executable", str(install / "cove"))
    return install


def test_frozen_bundle_finds_the_starter_model_inside_itself(frozen: Path):
    from desktop.core.library.model_library import STARTER_FILE, starter_model_path

    model = frozen / "_internal" / "models" / STARTER_FILE
    model.write_bytes(b"GGUF")
    assert starter_model_path() == model


def test_frozen_bundle_starts_the_probe_child_through_its_own_binary(frozen: Path):
    from desktop.core.engine.probe import FROZEN_CHILD_FLAG, child_command

    assert child_command() == [str(frozen / "cove"), FROZEN_CHILD_FLAG]


def test_windows_bundle_runs_the_probe_child_through_its_console_twin(frozen: Path,
                                                                     monkeypatch: pytest.MonkeyPatch):
    import types

    import desktop.core.engine.probe as probe
    from desktop.core.engine.probe import FROZEN_CHILD_FLAG, WINDOWS_CONSOLE_EXE, child_command

    monkeypatch.setattr(sys, "executable", str(frozen / "cove.exe"))
    (frozen / WINDOWS_CONSOLE_EXE).write_bytes(b"MZ")
    monkeypatch.setattr(probe, "os", types.SimpleNamespace(name="nt"))  # only the probe module sees Windows
    command = child_command()
    assert command == [str(frozen / WINDOWS_CONSOLE_EXE), FROZEN_CHILD_FLAG]
    assert 'name=f"{APP_NAME}-cli"' in SPEC.read_text() and WINDOWS_CONSOLE_EXE == "cove-cli.exe"
    assert r'& "dist\cove\cove-cli.exe" --self-test' in PS1.read_text()


def test_probe_child_command_outside_a_bundle_uses_python():
    from desktop.core.engine.probe import child_command

    assert child_command() == [sys.executable, "-m", "desktop.core.engine.probe"]


def test_data_folder_is_never_inside_the_install_folder(frozen: Path, monkeypatch: pytest.MonkeyPatch,
                                                       tmp_path: Path):
    from desktop.core.system.paths import app_paths

    monkeypatch.delenv("COVE_BASEDIR", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    for var in ("XDG_DATA_HOME", "XDG_CONFIG_HOME"):
        monkeypatch.delenv(var, raising=False)
    paths = app_paths()
    for folder in (paths.data_dir, paths.config_dir, paths.models_dir):
        assert not folder.is_relative_to(frozen), folder
        assert folder.is_relative_to(tmp_path / "home"), folder
