"""`cove models pull` as a person runs it: a real child process, the fake Hub through HF_ENDPOINT,
the real SmolLM2 file; a kill -9 mid-download and a disk that really fills up (a tmpfs)."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers.fakehub import HOSTILE_NAMES, SMOL_FILE, SMOL_REPO

pytestmark = pytest.mark.e2e
MB = 1 << 20
REPO_ROOT = Path(__file__).resolve().parents[2]


def cove_args(basedir: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "desktop", "--basedir", str(basedir), *args]


def pull(basedir: Path, repo: str = SMOL_REPO, file: str = SMOL_FILE, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(cove_args(basedir, "models", "pull", repo, file), capture_output=True, text=True,
                          timeout=timeout, cwd=REPO_ROOT)


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def ggufs(basedir: Path) -> list[Path]:
    return sorted(p for p in basedir.rglob("*") if p.suffix == ".gguf")


def partials(basedir: Path) -> list[Path]:
    return sorted(basedir.rglob(".partial/*.part"))


def target(basedir: Path) -> Path:
    return basedir / "data" / "models" / SMOL_REPO / SMOL_FILE


def test_pull_downloads_verifies_and_prints_the_path(fake_hub, tmp_path, starter_model):
    result = pull(tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(target(tmp_path))
    assert sha256(target(tmp_path)) == sha256(starter_model)
    assert f"{SMOL_FILE}: " in result.stderr and "(100%)" in result.stderr
    assert fake_hub.served_ranges(SMOL_FILE) == [(0, starter_model.stat().st_size)]
    assert all(r.path.startswith(("/api/", f"/{SMOL_REPO}/")) for r in fake_hub.requests)  # HF_ENDPOINT
    listed = subprocess.run(cove_args(tmp_path, "models"), capture_output=True, text=True, cwd=REPO_ROOT)
    assert str(target(tmp_path)) in listed.stdout


def test_a_killed_pull_continues_where_it_stopped(fake_hub, tmp_path, starter_model):
    size = starter_model.stat().st_size
    fake_hub.misbehave(SMOL_REPO, SMOL_FILE, throttle=16 * MB)
    child = subprocess.Popen(cove_args(tmp_path, "models", "pull", SMOL_REPO, SMOL_FILE), cwd=REPO_ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not (partials(tmp_path) and partials(tmp_path)[0].stat().st_size >= 20 * MB):
        assert time.monotonic() < deadline and child.poll() is None, "the pull never got going"
        time.sleep(0.02)
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    [part] = partials(tmp_path)
    kept = part.stat().st_size
    assert 20 * MB <= kept < size and not ggufs(tmp_path)
    fake_hub.behave()
    result = pull(tmp_path)
    assert result.returncode == 0, result.stderr
    assert sha256(target(tmp_path)) == sha256(starter_model)
    ranges = fake_hub.served_ranges(SMOL_FILE)
    assert ranges[0][0] == 0 and ranges[1:] == [(kept, size)]   # the second pull asked only for the rest
    assert not partials(tmp_path)


@pytest.mark.parametrize("switch, words", [
    ({"status": 401}, "token"), ({"status": 403}, "token"), ({"status": 404}, "not"),
    ({"status": 429}, "try again"), ({"status": 500}, "hub"), ({"flip_byte": 1000}, "failed verification"),
])
def test_a_failed_pull_exits_1_with_one_line_and_leaves_no_model(fake_hub, tmp_path, switch, words):
    fake_hub.misbehave(SMOL_REPO, SMOL_FILE, **switch)
    result = pull(tmp_path)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("cove: ") and words in last.lower()
    assert "Traceback" not in result.stderr
    assert not ggufs(tmp_path)


@pytest.mark.parametrize("repo, file, words", [
    ("nobody/nothing-GGUF", "x.gguf", "not"),
    (SMOL_REPO, "missing.Q4_0.gguf", "no gguf file named"),
])
def test_a_missing_repository_or_file_is_said(fake_hub, tmp_path, repo, file, words):
    result = pull(tmp_path, repo, file)
    assert result.returncode == 1
    assert result.stderr.startswith("cove: ") and words in result.stderr.lower()


def test_hostile_names_are_refused_and_nothing_is_written_outside(fake_hub, tmp_path):
    fake_hub.add_repo("evil/repo-GGUF", {name: b"GGUF" + bytes(64) for name in HOSTILE_NAMES})
    basedir = tmp_path / "deep" / "cove"
    for name in HOSTILE_NAMES[:-1]:   # a NUL cannot be passed on a command line
        result = pull(basedir, "evil/repo-GGUF", name)
        assert result.returncode == 1 and result.stderr.startswith("cove: ")
        assert "refused" in result.stderr or "no gguf file" in result.stderr.lower()
    assert not [p for p in tmp_path.rglob("*") if p.is_file() and "x.gguf" in p.name]
    assert not any("/resolve/" in r.path for r in fake_hub.requests)


def _namespaces_work() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c",
                            "mount -t tmpfs -o size=1m tmpfs /mnt"], capture_output=True)
    return probe.returncode == 0


DISK_FULL_SCRIPT = r"""
set -u
mount -t tmpfs -o size=200m tmpfs "$MNT"
PART_DIR="$MNT/cove/data/models/.partial"
"$PY" -m desktop --basedir "$MNT/cove" models pull "$REPO" "$FILE" 2>"$OUT/first.err" &
PID=$!
size() { stat -c %s "$PART_DIR"/*.part 2>/dev/null || echo 0; }
while [ "$(size)" -lt 20000000 ]; do kill -0 $PID 2>/dev/null || break; sleep 0.02; done
echo "filled_at=$(size)"
dd if=/dev/zero of="$MNT/filler" bs=1M 2>/dev/null
wait $PID; echo "first=$?"
echo "kept=$(stat -c %s "$PART_DIR"/*.part)"
rm "$MNT/filler"
"$PY" -m desktop --basedir "$MNT/cove" models pull "$REPO" "$FILE" 2>"$OUT/second.err"; echo "second=$?"
echo "sha=$(sha256sum "$MNT/cove/data/models/$REPO/$FILE" | cut -d' ' -f1)"
"""


@pytest.mark.skipif(not _namespaces_work(), reason="needs unprivileged user and mount namespaces (tmpfs)")
def test_a_really_full_disk_keeps_the_partial_and_the_pull_resumes_after_space_is_freed(fake_hub, tmp_path, starter_model):
    fake_hub.misbehave(SMOL_REPO, SMOL_FILE, throttle=16 * MB, times=1)   # slow first pull only
    mnt = tmp_path / "disk"
    mnt.mkdir()
    env = dict(os.environ, MNT=str(mnt), PY=sys.executable, REPO=SMOL_REPO, FILE=SMOL_FILE, OUT=str(tmp_path))
    done = subprocess.run(["unshare", "--user", "--map-root-user", "--mount", "sh", "-c", DISK_FULL_SCRIPT],
                          capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=180)
    facts = dict(line.split("=", 1) for line in done.stdout.split() if "=" in line)
    first_err = (tmp_path / "first.err").read_text()
    assert int(facts["filled_at"]) >= 20_000_000, (done.stdout, done.stderr, first_err)
    assert facts["first"] == "1", (done.stdout, done.stderr, first_err)
    assert first_err.strip().splitlines()[-1].startswith("cove: The disk is full")
    kept = int(facts["kept"])
    assert 20_000_000 <= kept < starter_model.stat().st_size
    assert facts["second"] == "0", (tmp_path / "second.err").read_text()
    assert facts["sha"] == sha256(starter_model)
    assert fake_hub.served_ranges(SMOL_FILE)[-1] == (kept, starter_model.stat().st_size)
