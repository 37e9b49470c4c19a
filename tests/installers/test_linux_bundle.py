"""The Linux installers end to end: ``installers/linux/build.sh`` builds the bundle, the .deb and
the portable tar.gz; the .deb is installed into scratch roots with ``dpkg -x`` and the installed
binary must chat offline (``--self-test``), open its window with the starter model selected
(screenshot: test-artifacts/bundle-window.png), keep conversations across a reinstall, and keep
user data outside the install folder.

The build takes a few minutes (PyInstaller); it runs once per session and in the default run:
it is what proves a fresh machine can make the installers.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import time
import tomllib
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO
from tests.helpers.xscreen import screenshot, stop_group, virtual_screen
from tests.installers.figures import FIGURES
from tests.installers.test_self_test import SELF_TEST_LINE, files_under, isolated_env

ARTIFACTS = REPO / "test-artifacts"
VERSION = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
BUILD_TIMEOUT_S = 1800
# The first test also runs build.sh (the session fixture); each installs or starts the bundle.
pytestmark = [pytest.mark.installer, pytest.mark.e2e, pytest.mark.timeout(BUILD_TIMEOUT_S + 600)]


@dataclass(frozen=True)
class LinuxBuild:
    deb: Path
    tarball: Path
    output: str
    bundle_mb: int
    window_s: float


def _require(tool: str) -> None:
    if not shutil.which(tool):
        pytest.fail(f"{tool} is missing: run .ci/run (it installs the Debian packages the tests need)")


@pytest.fixture(scope="session")
def linux_build() -> LinuxBuild:
    """Run installers/linux/build.sh as a user would, once per test session."""
    for tool in ("dpkg-deb", "tar"):
        _require(tool)
    env = {k: v for k, v in os.environ.items() if k not in ("COVE_SKIP_PYINSTALLER", "COVE_BASEDIR")}
    started = time.monotonic()
    result = subprocess.run(["bash", str(REPO / "installers" / "linux" / "build.sh")], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=BUILD_TIMEOUT_S)
    output = result.stdout + result.stderr
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "linux-build.log").write_text(output)
    assert result.returncode == 0, output[-5000:]
    size = re.search(r"^cove bundle size: (\d+) MB", output, re.M)
    window = re.search(r"^cove launch to interactive window: ([\d.]+) s", output, re.M)
    assert size and window, output[-3000:]
    print(f"\n{size.group(0)}\n{window.group(0)}\n(build.sh ran {time.monotonic() - started:.0f} s)")
    FIGURES["bundle size"] = f"{size.group(1)} MB"
    FIGURES["launch to window"] = f"{window.group(1)} s"
    FIGURES["build.sh"] = f"{time.monotonic() - started:.0f} s"
    machine = os.uname().machine
    arch = subprocess.run(["dpkg", "--print-architecture"], capture_output=True, text=True).stdout.strip()
    build = LinuxBuild(REPO / "dist" / f"cove_{VERSION}_{arch}.deb",
                       REPO / "dist" / f"cove-{VERSION}-linux-{machine}.tar.gz",
                       output, int(size.group(1)), float(window.group(1)))
    assert build.deb.is_file() and build.tarball.is_file()
    return build


def install_deb(deb: Path, root: Path) -> Path:
    """``dpkg -x`` the package into ``root`` (a scratch root); returns the installed binary."""
    root.mkdir(parents=True, exist_ok=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True, timeout=300)
    binary = root / "opt" / "cove" / "cove"
    assert os.access(binary, os.X_OK)
    return binary


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.lstat().st_size, p.lstat().st_mtime_ns) for p in folder.rglob("*")}


@pytest.fixture(scope="session")
def installed(linux_build: LinuxBuild, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The .deb installed once into a scratch root, shared by the read-only checks."""
    return install_deb(linux_build.deb, tmp_path_factory.mktemp("deb-root") / "root")


# -- the package ------------------------------------------------------------------------------------
def test_deb_metadata_and_layout(linux_build: LinuxBuild, installed: Path):
    info = subprocess.run(["dpkg-deb", "-f", str(linux_build.deb)], capture_output=True, text=True,
                          check=True).stdout
    fields = dict(re.findall(r"^([\w-]+): (.*)$", info, re.M))
    assert fields["Package"] == "cove" and fields["Version"] == VERSION
    assert fields["Depends"].startswith("libc6 (>= ")
    root = installed.parents[2]
    assert os.readlink(root / "usr" / "bin" / "cove") == "/opt/cove/cove"
    desktop = (root / "usr" / "share" / "applications" / "cove.desktop").read_text()
    assert desktop == (REPO / "resources" / "cove.desktop").read_text()
    assert (root / "usr/share/icons/hicolor/scalable/apps/cove.svg").read_bytes() == \
        (REPO / "resources" / "cove.svg").read_bytes()
    assert (root / "usr/share/icons/hicolor/256x256/apps/cove.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    listing = subprocess.run(["dpkg-deb", "-c", str(linux_build.deb)], capture_output=True, text=True,
                             check=True).stdout.splitlines()
    assert listing and all(" root/root " in line for line in listing)  # --root-owner-group
    control = Path(str(installed.parents[2]) + "-control")
    subprocess.run(["dpkg-deb", "-e", str(linux_build.deb), str(control)], check=True)
    for script in ("postinst", "postrm"):
        text = (control / script).read_text()
        assert os.access(control / script, os.X_OK) and "update-desktop-database" in text
        assert ".local/share/Cove" not in text.replace("# ", "").split("case")[-1]  # never deletes user data
    bundle = root / "opt" / "cove" / "_internal"
    assert (bundle / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf").is_file()
    assert (bundle / "llama_cpp" / "lib" / "libllama.so").exists()
    plugins = {str(p.relative_to(bundle / "PySide6" / "Qt" / "plugins")) for p in
               (bundle / "PySide6" / "Qt" / "plugins").rglob("*.so")}
    assert {"platforms/libqxcb.so", "platforms/libqoffscreen.so", "imageformats/libqsvg.so",
            "iconengines/libqsvgicon.so"} <= plugins
    assert not any(p.startswith(("platforms/libqeglfs", "platforms/libqlinuxfb", "platforms/libqvnc",
                                 "platformthemes/libqgtk3", "sqldrivers", "tls", "egldeviceintegrations"))
                   for p in plugins), plugins
    assert not list(bundle.rglob("*Qt6Quick*")) and not list(bundle.rglob("*Qt6WebEngine*"))
    assert not list(bundle.rglob("*Qt6Qml*")) and not list(bundle.rglob("*Qt6Multimedia*"))


def test_installed_binary_passes_its_self_test_offscreen_and_writes_nothing(installed: Path, tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    root = installed.parents[2]
    before = snapshot(root)
    result = subprocess.run([str(installed), "--self-test"], env=isolated_env(home), capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    line = result.stdout.strip().splitlines()[-1]
    match = SELF_TEST_LINE.match(line)
    assert match and match.group(2).strip(), line
    print("\n" + line)
    assert files_under(home) == []  # nothing in ~/.local/share/Cove, ~/.config/Cove, or anywhere in HOME
    assert snapshot(root) == before  # nor in the install folder


def test_the_installed_binary_serves_the_openai_compatible_api(installed: Path, tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    server = subprocess.Popen([str(installed), "serve", "--port", "0"], env=isolated_env(home),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        assert "listening on http://127.0.0.1:" in line, line + server.stderr.read()
        url = line.rsplit(" ", 1)[1].strip()
        with urllib.request.urlopen(f"{url}/models", timeout=60) as response:
            [model] = json.loads(response.read())["data"]
        body = json.dumps({"model": model["id"], "max_tokens": 4,
                           "messages": [{"role": "user", "content": "Hello"}]}).encode()
        request = urllib.request.Request(f"{url}/chat/completions", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=120) as response:
            reply = json.loads(response.read())
        assert reply["choices"][0]["message"]["content"].strip() and reply["usage"]["completion_tokens"] > 0
    finally:
        server.terminate()
        server.communicate(timeout=30)


def test_installed_window_shows_the_starter_model_under_xvfb(installed: Path, tmp_path: Path):
    env = isolated_env(tmp_path / "home")
    env.update(COVE_BASEDIR=str(tmp_path / "data"), COVE_REPORT_READY="1")
    log = tmp_path / "window.log"
    proc = None
    with virtual_screen(150) as screen:
        env.update(screen)
        try:
            with log.open("w") as out:
                proc = subprocess.Popen([str(installed)], env=env, stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True)
                deadline = time.monotonic() + 240
                while time.monotonic() < deadline and proc.poll() is None:
                    text = log.read_text(errors="replace")
                    if "cove: model ready" in text or "cove: model failed" in text:
                        break
                    time.sleep(0.5)
                text = log.read_text(errors="replace")
                assert proc.poll() is None, "the bundle ended early:\n" + text[-3000:]
                assert "cove: window ready" in text, text[-3000:]
                assert "cove: model ready: SmolLM2-135M-Instruct" in text, text[-3000:]
                if "DISPLAY" in screen:
                    assert shutil.which("import"), "imagemagick's import is missing (run .ci/run)"
                    shot = screenshot(env, ARTIFACTS / "bundle-window.png", settle_s=1.5)
                    assert shot.stat().st_size > 10_000  # a real window, not a blank screen
        finally:
            stop_group(proc)


# -- data across reinstalls -----------------------------------------------------------------------
def _cove(binary: Path, data: Path, home: Path, *args: str) -> subprocess.CompletedProcess:
    env = isolated_env(home)
    env["COVE_BASEDIR"] = str(data)
    return subprocess.run([str(binary), *args], env=env, capture_output=True, text=True, timeout=300)


def test_a_conversation_survives_a_reinstall(linux_build: LinuxBuild, tmp_path: Path):
    root, data, home = tmp_path / "root", tmp_path / "user-data", tmp_path / "home"
    home.mkdir()
    binary = install_deb(linux_build.deb, root)
    first = _cove(binary, data, home, "chat", "--max-tokens", "16", "--seed", "1", "--temperature", "0", "hello")
    assert first.returncode == 0 and first.stdout.strip(), first.stdout + first.stderr
    assert "cove: conversation 1" in first.stderr
    assert not data.is_relative_to(root)

    shutil.rmtree(root)  # uninstall everything the package installed ...
    binary = install_deb(linux_build.deb, root)  # ... and install it again
    models = _cove(binary, data, home, "models")
    assert models.returncode == 0 and "SmolLM2-135M-Instruct" in models.stdout
    assert str(root / "opt" / "cove") in models.stdout  # the starter model is the one in the bundle
    again = _cove(binary, data, home, "chat", "--conversation", "1", "--max-tokens", "16", "--seed", "1", "again")
    assert again.returncode == 0 and again.stdout.strip(), again.stdout + again.stderr

    with sqlite3.connect(f"file:{data / 'data' / 'cove.sqlite3'}?mode=ro", uri=True) as db:
        contents = [row[0] for row in db.execute(
            "SELECT content FROM messages WHERE conversation_id = 1 AND role = 'user' ORDER BY id")]
    assert contents == ["hello", "again"]


def test_the_installed_app_keeps_user_data_in_home_never_in_the_install_folder(installed: Path, tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    root = installed.parents[2]
    before = snapshot(root)
    result = subprocess.run([str(installed), "models"], env=isolated_env(home), capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (home / ".local" / "share" / "Cove").is_dir() and (home / ".config" / "Cove").is_dir()
    assert snapshot(root) == before


# -- the portable tar.gz --------------------------------------------------------------------------
def test_portable_tarball_installs_for_one_user_and_uninstalls_without_touching_data(linux_build: LinuxBuild,
                                                                                    tmp_path: Path):
    unpack, home = tmp_path / "unpack", tmp_path / "home"
    unpack.mkdir()
    home.mkdir()
    subprocess.run(["tar", "-xzf", str(linux_build.tarball), "-C", str(unpack)], check=True, timeout=300)
    folder = unpack / f"cove-{VERSION}-linux-{os.uname().machine}"
    assert {"cove", "cove.desktop", "cove.svg", "cove.png", "install-user.sh"} <= {p.name for p in folder.iterdir()}
    env = isolated_env(home)
    env["PATH"] = os.environ.get("PATH", "")
    subprocess.run(["sh", str(folder / "install-user.sh")], env=env, check=True, capture_output=True, timeout=300)
    installed = home / ".local" / "opt" / "cove" / "cove"
    entry = (home / ".local/share/applications/cove.desktop").read_text()
    assert f'Exec="{installed}"' in entry and "Icon=cove" in entry
    assert (home / ".local/share/icons/hicolor/scalable/apps/cove.svg").is_file()
    version = subprocess.run([str(home / ".local" / "bin" / "cove"), "--version"], env=env, capture_output=True,
                             text=True, timeout=120)
    assert version.stdout.strip() == f"cove {VERSION}", version.stdout + version.stderr

    data = home / ".local" / "share" / "Cove"
    data.mkdir(parents=True)
    (data / "cove.sqlite3").write_bytes(b"conversations")
    subprocess.run(["sh", str(folder / "install-user.sh"), "--uninstall"], env=env, check=True, capture_output=True)
    assert not installed.exists() and not (home / ".local/share/applications/cove.desktop").exists()
    assert (data / "cove.sqlite3").read_bytes() == b"conversations"


def test_installed_app_searches_and_pulls_from_the_hub(installed: Path, tmp_path: Path, fake_hub, starter_model: Path):
    """The bundle carries the Hub client (huggingface_hub and what it imports): search and a
    verified pull against the fake Hub work from the installed binary."""
    from tests.helpers.fakehub import SMOL_FILE, SMOL_REPO

    home, data = tmp_path / "home", tmp_path / "data"
    home.mkdir()
    found = _cove(installed, data, home, "models", "search", "smollm2")
    assert found.returncode == 0 and SMOL_REPO in found.stdout, found.stdout + found.stderr
    pulled = _cove(installed, data, home, "models", "pull", SMOL_REPO, SMOL_FILE)
    assert pulled.returncode == 0, pulled.stdout + pulled.stderr
    placed = list((data / "data" / "models").rglob(SMOL_FILE))
    assert len(placed) == 1 and placed[0].stat().st_size == starter_model.stat().st_size
