"""kill -9 at random moments: the real app (and `cove chat`) in child processes, then the store checked.

Acceptance: PRAGMA integrity_check is 'ok' after every kill, no committed (sent) message is ever
lost, and a streaming answer loses at most one flush interval of text. The harness
(``kill_harness.py``) prints what the app had committed and painted, with times on the machine's
monotonic clock; this test compares that with what is on disk after the kill.

The text lost is measured in streaming time: from the last paint (or printed chunk) that is on
disk to the last one before the kill. The answer recorder flushes when a token arrives, so if
generation stalls (a busy machine) the unsaved tail waits for the next token; the time from the
last saved paint to the kill, stall included, is reported too but not bounded.

``COVE_KILL9_RUNS`` (default 200) and ``COVE_KILL9_SEED`` scale and replay the window run.
"""

from __future__ import annotations

import hashlib
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from desktop.core.conversations.answer_recorder import FLUSH_INTERVAL_S
from desktop.core.conversations.store import Store
from desktop.core.system.paths import AppPaths, app_paths
from desktop.services.chat_controller import PAINT_INTERVAL_MS
from tests.helpers.report import report

REPO = Path(__file__).resolve().parents[2]
HARNESS = Path(__file__).with_name("kill_harness.py")
# Paint coalescing (33 ms), the flush's trip through the store queue and its fsync. A flush is
# made when a token arrives, so the gap between two tokens (long on a loaded machine) is added.
SLACK_S = 0.1
RUNS = int(os.environ.get("COVE_KILL9_RUNS", "200"))
KILLS_PER_BASEDIR = 10
PARALLEL = 2
KILL_WINDOW_S = (0.3, 3.0)  # after the process starts: start-up, model load, sending, streaming
CHAT_WINDOW_S = (0.0, 1.5)  # after the model is ready: sending, streaming, Stop, the final flush


def child_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    env.pop("COVE_BASEDIR", None)
    env.pop("COVE_REPORT_READY", None)
    env.update(extra)
    return env


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def open_db(path: Path) -> sqlite3.Connection:
    """A plain connection, as any fresh process would make (it replays the WAL a kill left)."""
    return sqlite3.connect(str(path), timeout=10)


def database_problems(db: sqlite3.Connection) -> tuple[str, list[str]]:
    """SQLite's verdict on the file, and any broken reference or search index."""
    verdict = db.execute("PRAGMA integrity_check").fetchone()[0]
    if verdict != "ok":
        return verdict, [f"integrity_check: {verdict}"]
    problems = []
    broken = db.execute("PRAGMA foreign_key_check").fetchall()
    if broken:
        problems.append(f"foreign_key_check: {broken[:5]}")
    for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table' AND sql LIKE '%USING fts5%'"):
        try:  # the full-text index against its content table
            db.execute(f"INSERT INTO {name}({name}, rank) VALUES ('integrity-check', 1)")
        except sqlite3.DatabaseError as exc:
            problems.append(f"{name} integrity-check: {exc}")
    return verdict, problems


@dataclass
class Loss:
    """Streamed text that was shown (painted or printed) but is not on disk after a kill."""

    streaming_s: float = 0.0  # how long the lost text took to stream: last covered sample -> last sample
    wall_s: float = 0.0  # last covered sample -> the kill (adds any stall after the last token)
    gap_s: float = 0.0  # the longest wait between two samples (one token on a busy machine)

    @property
    def bound_s(self) -> float:
        """What the recorder promises: a flush at the first token one interval after the last."""
        return FLUSH_INTERVAL_S + SLACK_S + self.gap_s


def streamed_loss(samples: list[tuple[float, int]], stored: int, killed_at: float) -> Loss | None:
    """``samples``: (time, length shown so far) before the kill; ``stored``: length on disk.
    None when everything shown is on disk."""
    samples = sorted((t, n) for t, n in samples if t <= killed_at)
    if not samples or samples[-1][1] <= stored:
        return None
    times = [t for t, _ in samples]
    covered = [t for t, n in samples if n <= stored]
    # The lost text began streaming after the last covered sample (or just before the first one).
    since = covered[-1] if covered else times[0] - PAINT_INTERVAL_MS / 1000
    gap = max((b - a for a, b in zip(times, times[1:])), default=0.0)
    return Loss(times[-1] - since, killed_at - since, gap)


# -- the window, killed while it chats ---------------------------------------------------------
@dataclass
class Run:
    """One child: what it printed and when it was killed."""

    basedir: Path
    seed: int
    delay: float
    after: str  # "start" or "ready": what the delay counts from
    killed_at: float = 0.0
    returncode: int = 0
    stderr: str = ""
    lines: list[str] = field(default_factory=list)

    def events(self, kind: str) -> list[list[str]]:
        return [line.split(" ") for line in self.lines if line.split(" ", 1)[0] == kind]


def kill_window_at_random(basedir: Path, seed: int, delay: float, after: str, probes: Path) -> Run:
    """Start the harness on ``basedir``, SIGKILL it ``delay`` seconds after it started (or after
    its model was ready), collect its output."""
    run = Run(basedir, seed, delay, after)
    ready = threading.Event()
    stderr_file = basedir.parent / f"{basedir.name}-stderr-{seed}.txt"
    stderr = open(stderr_file, "wb")  # noqa: SIM115 - closed below
    started = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(HARNESS), str(basedir), str(seed), str(probes)],
                            stdout=subprocess.PIPE, stderr=stderr, env=child_env(), cwd=REPO)

    def read() -> None:
        for raw in proc.stdout:  # type: ignore[union-attr]
            if raw.endswith(b"\n"):  # a line cut by the kill is not a line
                run.lines.append(raw.decode("utf-8").rstrip("\n"))
                if raw.startswith(b"MODEL ready"):
                    ready.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if after == "ready":
        ready.wait(60)
        started = time.monotonic()
    time.sleep(max(0.0, started + delay - time.monotonic()))
    run.killed_at = time.monotonic()
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    reader.join(30)
    proc.stdout.close()  # type: ignore[union-attr]
    stderr.close()
    run.returncode = proc.returncode
    run.stderr = stderr_file.read_text("utf-8", "replace")
    return run


@dataclass
class Verdict:
    integrity: str = ""
    problems: list[str] = field(default_factory=list)
    sent: int = 0
    answers_cut: int = 0
    worst_loss_s: float = 0.0
    worst_wall_s: float = 0.0
    worst_gap_s: float = 0.0
    opened: bool = False
    empty_conversations: int = 0
    phase: str = ""


def check_run(run: Run) -> Verdict:
    """Compare the child's report with the database it left."""
    v = Verdict()
    v.opened = bool(run.events("OPENED"))
    v.phase = ("before the database opened" if not v.opened else
               "before the model was ready" if not run.events("SENT") else "while chatting")
    if run.returncode != -signal.SIGKILL:
        v.problems.append(f"the app exited by itself ({run.returncode}): {run.stderr[-1500:]}")
    for err in run.events("ERROR"):
        v.problems.append("store error: " + " ".join(err[1:]))
    database = app_paths(run.basedir).database
    if not database.exists():
        v.integrity = "ok"  # nothing written yet
        if run.events("SENT"):
            v.problems.append("messages were committed but there is no database")
        return v
    db = open_db(database)
    try:
        v.integrity, problems = database_problems(db)
        v.problems += problems
        if v.integrity != "ok":
            return v
        if not db.execute("SELECT name FROM sqlite_master WHERE name='messages'").fetchone():
            if run.events("SENT"):
                v.problems.append("messages were committed but there is no messages table")
            return v
        v.empty_conversations = db.execute(
            "SELECT COUNT(*) FROM conversations c WHERE NOT EXISTS "
            "(SELECT 1 FROM messages m WHERE m.conversation_id = c.id)").fetchone()[0]
        # What was typed is what was sent.
        asked = ""
        for line in run.lines:
            kind, *rest = line.split(" ")
            if kind == "ASK":
                asked = rest[0]
            elif kind == "SENT" and rest[2] != asked:
                v.problems.append(f"message {rest[1]} is not the text that was typed")
        # 0 sent messages lost: each committed question is there, with its exact text.
        for _, cid, mid, digest, _t in run.events("SENT"):
            v.sent += 1
            row = db.execute("SELECT conversation_id, role, content FROM messages WHERE id=?", (int(mid),)).fetchone()
            if row is None:
                v.problems.append(f"sent message {mid} is missing")
            elif (row[0], row[1], sha1(row[2])) != (int(cid), "user", digest):
                v.problems.append(f"sent message {mid} differs: conversation {row[0]}, role {row[1]}, "
                                  f"{row[2]!r}")
        # Streamed text: what was painted up to one flush interval (plus slack) before the kill is on disk.
        limit = run.killed_at - FLUSH_INTERVAL_S - SLACK_S
        done = {int(e[1]): (e[2], float(e[3])) for e in run.events("DONE")}
        streams: dict[int, list[tuple[int, float]]] = {}
        for _, mid, length, t in run.events("STREAM"):
            streams.setdefault(int(mid), []).append((int(length), float(t)))
        for _, mid, _t in run.events("START"):
            answer_id = int(mid)
            row = db.execute("SELECT role, content, status FROM messages WHERE id=?", (answer_id,)).fetchone()
            if row is None:
                v.problems.append(f"answer {answer_id} (started, so committed) is missing")
                continue
            role, content, status = row
            painted = streams.get(answer_id, [])
            loss = streamed_loss([(t, n) for n, t in painted], len(content), run.killed_at)
            if loss is not None:
                v.answers_cut += 1
                v.worst_loss_s = max(v.worst_loss_s, loss.streaming_s)
                v.worst_wall_s = max(v.worst_wall_s, loss.wall_s)
                v.worst_gap_s = max(v.worst_gap_s, loss.gap_s)
                if loss.streaming_s > loss.bound_s:
                    v.problems.append(
                        f"answer {answer_id}: {len(content)} characters on disk, {painted[-1][0]} painted; "
                        f"the lost text streamed for {loss.streaming_s:.3f} s (bound {loss.bound_s:.3f} s)")
            final = done.get(answer_id)
            if final and final[1] <= limit and status != final[0]:
                v.problems.append(f"answer {answer_id} finished {final[0]} at least "
                                  f"{FLUSH_INTERVAL_S + SLACK_S:.1f} s before the kill, but is stored {status}")
    finally:
        db.close()
    return v


def kill_one_basedir(basedir: Path, seeds: list[int], delays: list[tuple[float, str]],
                     probes: Path) -> list[tuple[Run, Verdict]]:
    results = []
    for seed, (delay, after) in zip(seeds, delays):
        run = kill_window_at_random(basedir, seed, delay, after, probes)
        results.append((run, check_run(run)))
    return results


@pytest.mark.timeout(1200)  # RUNS real windows started and killed: minutes (4-5 with the default 200)
def test_kill9_while_chatting_loses_nothing_committed(tmp_path: Path, probed_cache: Path) -> None:
    base_seed = int(os.environ.get("COVE_KILL9_SEED", str(random.SystemRandom().randrange(10**6))))
    rng = random.Random(base_seed)
    basedirs = max(1, -(-RUNS // KILLS_PER_BASEDIR))
    jobs = []
    for b in range(basedirs):
        count = min(KILLS_PER_BASEDIR, RUNS - b * KILLS_PER_BASEDIR)
        seeds = [base_seed * 1000 + b * KILLS_PER_BASEDIR + i for i in range(count)]
        delays = [(rng.uniform(*KILL_WINDOW_S), "start") if rng.random() < 0.5 else
                  (rng.uniform(*CHAT_WINDOW_S), "ready") for _ in range(count)]
        jobs.append((tmp_path / f"cove{b:02d}", seeds, delays))
    started = time.monotonic()
    with ThreadPoolExecutor(PARALLEL) as pool:
        futures = [pool.submit(kill_one_basedir, d, s, t, probed_cache) for d, s, t in jobs]
        results = [r for f in futures for r in f.result()]
    elapsed = time.monotonic() - started

    kills = len(results)
    ok = sum(v.integrity == "ok" for _, v in results)
    sent = sum(v.sent for _, v in results)
    cut = sum(v.answers_cut for _, v in results)
    worst_ms = round(max((v.worst_loss_s for _, v in results), default=0.0) * 1000)
    gap_ms = round(max((v.worst_gap_s for _, v in results), default=0.0) * 1000)
    wall_ms = round(max((v.worst_wall_s for _, v in results), default=0.0) * 1000)
    phases: dict[str, int] = {}
    for _, v in results:
        phases[v.phase] = phases.get(v.phase, 0) + 1
    # A fresh app opened the database every earlier kill left (the next child on the same folder).
    reopened = sum(v.opened for (r, v) in results if r.seed % KILLS_PER_BASEDIR != 0)
    stops = sum(len(r.events("STOP")) for r, _ in results)
    finished = sum(len(r.events("DONE")) for r, _ in results)
    continued = sum(len(r.events("CONTINUE")) for r, _ in results)
    final_checks = []
    for basedir, _, _ in jobs:
        database = app_paths(basedir).database
        if database.exists():
            store = Store(database)
            final_checks.append((basedir.name, store.integrity_check(), store.message_count()))
            store.close()
    print(f"\nkill -9 (seed {base_seed}): {kills} kills in {elapsed:.0f} s, phases {phases}, "
          f"{sent} committed questions checked, {cut} answers cut mid-stream, worst loss {worst_ms} ms of "
          f"streaming ({wall_ms} ms to the kill; longest gap between paints {gap_ms} ms), "
          f"{finished} answers finished ({stops} stopped), {continued} runs went on with a conversation an "
          f"earlier kill left, {reopened} starts over a killed database opened it, "
          f"{sum(v.empty_conversations for _, v in results)} conversation rows without their question "
          f"(summed over checks); final: {final_checks}")

    problems = [f"{r.basedir.name} seed {r.seed} killed {r.delay:.2f} s after {r.after} ({v.phase}): {p}"
                for r, v in results for p in v.problems]
    assert not problems, f"seed {base_seed}:\n" + "\n".join(problems[:30])
    assert ok == kills
    assert all(check == "ok" for _, check, _ in final_checks), final_checks
    assert kills >= RUNS
    if RUNS >= 100:  # the random kill times must actually have covered the interesting moments
        assert phases.get("while chatting", 0) >= RUNS // 4, phases
        assert cut >= 10, cut
        assert reopened >= RUNS // 2, reopened
    report("kill -9", f"{kills} kills, integrity ok {ok}/{kills}, sent messages lost 0 of {sent}, "
                      f"streamed text lost <= {FLUSH_INTERVAL_S:g} s (worst {worst_ms} ms of streaming, "
                      f"{wall_ms} ms before the kill)")


# -- `cove chat`, killed at any moment ------------------------------------------------------------
CLI_RUNS = 30


def kill_cli_at_random(paths: AppPaths, prompt: str, delay: float, after: str, conversation: int) -> dict:
    """Run ``cove chat`` and SIGKILL it ``delay`` s after it started (or after the answer began to
    appear); returns its timestamped output."""
    args = [sys.executable, "-m", "desktop", "chat", "--max-tokens", "200", "--temperature", "0.9"]
    if conversation:
        args += ["--conversation", str(conversation)]
    proc = subprocess.Popen([*args, prompt], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
                            env=child_env(COVE_BASEDIR=str(paths.data_dir.parent)))
    started = time.monotonic()
    chunks: list[tuple[float, bytes]] = []
    err: list[bytes] = []
    answering = threading.Event()

    def read_out() -> None:
        fd = proc.stdout.fileno()  # type: ignore[union-attr]
        while data := os.read(fd, 65536):
            chunks.append((time.monotonic(), data))
            answering.set()
        answering.set()

    threads = [threading.Thread(target=read_out, daemon=True),
               threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)]  # type: ignore[union-attr]
    for t in threads:
        t.start()
    if after == "answer":
        answering.wait(60)
        started = time.monotonic()
    time.sleep(max(0.0, started + delay - time.monotonic()))
    killed_at = time.monotonic()
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    for t in threads:
        t.join(30)
    proc.stdout.close()  # type: ignore[union-attr]
    proc.stderr.close()  # type: ignore[union-attr]
    return {"chunks": chunks, "stderr": b"".join(err).decode("utf-8", "replace"), "killed_at": killed_at,
            "returncode": proc.returncode}


def test_cove_chat_killed_at_any_moment_leaves_the_store_intact(paths: AppPaths) -> None:
    rng = random.Random()
    problems: list[str] = []
    conversation_created = 0
    cut = 0
    worst = 0.0
    orphans = 0
    continued = 0
    worst_gap = 0.0
    worst_wall = 0.0
    kills = 0
    for i in range(CLI_RUNS):
        prompt = f"Write a long story about a fox, part {i} — with ünïcode ☕"
        conversation = 0
        if paths.database.exists() and rng.random() < 0.3:
            db = open_db(paths.database)
            ids = [r[0] for r in db.execute("SELECT id FROM conversations")]
            db.close()
            conversation = rng.choice(ids) if ids else 0
            continued += bool(conversation)
        after = "start" if i % 2 else "answer"
        delay = rng.uniform(0.1, 2.0) if after == "start" else rng.uniform(0.0, 1.5)
        out = kill_cli_at_random(paths, prompt, delay, after, conversation)
        if out["returncode"] == -signal.SIGKILL:
            kills += 1
        elif out["returncode"] != 0:  # finishing first is fine (the answer ended early), failing is not
            problems.append(f"run {i}: exited {out['returncode']} before the kill: {out['stderr'][-300:]}")
            continue
        if not paths.database.exists():
            continue
        db = open_db(paths.database)
        try:
            check, found = database_problems(db)
            problems += [f"run {i}: {p}" for p in found]
            if check != "ok":
                continue
            if not db.execute("SELECT name FROM sqlite_master WHERE name='messages'").fetchone():
                continue
            printed = [line for line in out["stderr"].splitlines() if line.startswith("cove: conversation ")]
            if printed:
                conversation_created += 1
                cid = int(printed[0].split()[-1])
                if db.execute("SELECT id FROM conversations WHERE id=?", (cid,)).fetchone() is None:
                    problems.append(f"run {i}: conversation {cid} was announced but is not stored")
            users = db.execute("SELECT id, content FROM messages WHERE role='user' AND content LIKE ?",
                               (f"%part {i} —%",)).fetchall()
            if len(users) > 1 or any(content != prompt for _, content in users):
                problems.append(f"run {i}: the question is stored wrongly: {users}")
            # What the code guarantees: a question, once stored, is whole; the answer row follows it.
            answer = db.execute("SELECT content, status FROM messages WHERE parent_id=? AND role='assistant'",
                                (users[0][0],)).fetchone() if users else None
            if answer is not None:
                data = b"".join(c for _, c in out["chunks"])
                text = data.decode("utf-8", "ignore")
                stored, status = answer
                if out["returncode"] == 0:  # it finished: the whole answer, marked complete
                    if (stored, status) != (text.removesuffix("\n"), "complete"):
                        problems.append(f"run {i}: finished, but stored {status} {stored!r}, printed {text!r}")
                elif not text.startswith(stored):
                    problems.append(f"run {i}: stored answer {stored!r} is not what was printed {text!r}")
                else:
                    samples, acc = [], b""
                    for t, c in out["chunks"]:
                        acc += c
                        samples.append((t, len(acc.decode("utf-8", "ignore"))))
                    loss = streamed_loss(samples, len(stored), out["killed_at"])
                    if loss is not None:
                        cut += 1
                        worst = max(worst, loss.streaming_s)
                        worst_wall = max(worst_wall, loss.wall_s)
                        worst_gap = max(worst_gap, loss.gap_s)
                        if loss.streaming_s > loss.bound_s:
                            problems.append(f"run {i}: {len(stored)} characters stored, {len(text)} printed; the "
                                            f"lost text streamed for {loss.streaming_s:.3f} s "
                                            f"(bound {loss.bound_s:.3f} s)")
            orphans = db.execute(
                "SELECT COUNT(*) FROM conversations c WHERE NOT EXISTS "
                "(SELECT 1 FROM messages m WHERE m.conversation_id = c.id)").fetchone()[0]
        finally:
            db.close()
    store = Store(paths.database)  # a fresh process opens what the kills left
    assert store.integrity_check() == "ok"
    store.close()
    print(f"\ncove chat: {CLI_RUNS} runs, {kills} killed, {conversation_created} announced conversations, {continued} continued, "
          f"{cut} answers cut mid-stream, worst loss {worst * 1000:.0f} ms of streaming ({worst_wall * 1000:.0f} ms to "
          f"the kill; longest gap between tokens "
          f"{worst_gap * 1000:.0f} ms), {orphans} conversations without "
          f"their question")
    assert not problems, "\n".join(problems)
    assert kills >= CLI_RUNS * 2 // 3, kills
    report("cove chat kill -9", f"{kills} kills, integrity ok {kills}/{kills}, "
                                f"streamed text lost <= {FLUSH_INTERVAL_S:g} s (worst {worst * 1000:.0f} ms of "
                                f"streaming, {worst_wall * 1000:.0f} ms before the kill)")


# -- killed while the model loads ---------------------------------------------------------------
def test_killed_while_loading_the_model_is_explained_and_not_repeated(qtbot, paths: AppPaths, start_cove,
                                                                        starter_model: Path) -> None:
    caught = False
    for _attempt in range(20):  # the load takes a fraction of a second: retry if it slipped by
        proc = subprocess.Popen([sys.executable, "-m", "desktop"], cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE,
                                env=child_env(COVE_BASEDIR=str(paths.data_dir.parent), COVE_REPORT_READY="1"))
        loaded = threading.Event()
        said: list[bytes] = []

        def watch(stream=proc.stderr, loaded=loaded, said=said) -> None:
            for line in stream:
                said.append(line)
                if b"cove: model ready" in line or b"cove: model failed" in line:
                    loaded.set()

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and proc.poll() is None and not loaded.is_set():
            if paths.crash_marker.exists():
                proc.send_signal(signal.SIGKILL)
                caught = True
                break
            time.sleep(0.001)
        if not caught:
            proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        watcher.join(30)
        proc.stderr.close()  # type: ignore[union-attr]
        if caught:
            break
        assert proc.returncode == -signal.SIGKILL, b"".join(said).decode("utf-8", "replace")[-2000:]
    assert caught, "the load was never caught in progress"
    assert paths.crash_marker.exists()

    app = start_cove(wait_model=False)
    assert app.window.banner_box.isVisible()
    assert f"closed unexpectedly while loading {starter_model.name}" in app.window.banner.text()
    assert "not loaded again" in app.window.banner.text()
    qtbot.waitUntil(lambda: "crashed while loading" in app.window.model_status.text(), timeout=10_000)
    qtbot.wait(2000)
    assert not app.controller.model_ready and not app.controller.model_path
    assert "crashed while loading" in app.window.model_status.text()
    assert not paths.crash_marker.exists()  # told once; the next start loads it again
