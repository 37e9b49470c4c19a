"""Drives the real Cove window in this process so that a parent can ``kill -9`` it at any moment.

    python tests/reliability/kill_harness.py BASEDIR SEED [PROBES_JSON]

Starts :class:`desktop.app.CoveApp` offscreen on ``BASEDIR`` (the probe verdicts in PROBES_JSON
are copied in first, so the starter model loads at once), then chats for ever through the real
widgets: it types questions into the composer and presses Enter (or sends through the window),
lets answers stream, sometimes presses Stop, and alternates between new conversations and
continuing the open one (or, right after start-up, a conversation a previous run left behind).

Every line on standard output is flushed as soon as it is written (times are ``time.monotonic()``,
the same clock in every process on the machine):

    BOOT <t>                                 the script started
    OPENED <t>                               the database is open (a fresh app over the last run's file)
    CONTINUE <conversation_id> <t>           a conversation an earlier run left is opened to go on with
    MODEL <state> <t>                        the controller's model_state
    ASK <sha1> <t>                           about to send a question with this text
    SENT <conversation_id> <message_id> <sha1> <t>   the user message is committed (message_added)
    START <message_id> <t>                   the answer's placeholder row is committed (answer_started)
    STREAM <message_id> <length> <t>         the answer's painted text (answer_updated)
    STOP <message_id> <t>                    Stop was pressed
    DONE <message_id> <status> <t>           answer_finished
    ERROR <text>                             the store reported a problem
    PROBLEM <text>                           the controller told the person something
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import sys
import time
from pathlib import Path

BOOT = time.monotonic()

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.pop("COVE_BASEDIR", None)
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

QUESTIONS = [
    "Tell me a short story about a lighthouse keeper",
    "Explain how a bicycle works",
    "Write a poem about autumn leaves",
    "What are three facts about the moon?",
    "Describe a busy market in the morning",
    "List some uses of a paperclip",
    "Why is the sky blue? Explain simply.",
    "Write a recipe for pancakes",
]
# Sent through the window rather than typed: text a keyboard simulation would mangle.
ODD_QUESTIONS = [
    "Résumé, naïve café — explain these words ☕",
    "Two lines:\nfirst line\nsecond line — what did I write?",
    "Emoji test 🚀🌙 — describe a rocket trip",
    "Quote \"this\" and 'that'; also back\\slash and tab\there",
]


def emit(*parts: object) -> None:
    sys.stdout.write(" ".join(str(p) for p in parts) + "\n")
    sys.stdout.flush()


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def main(argv: list[str]) -> int:
    basedir, seed = argv[0], int(argv[1])
    probes = argv[2] if len(argv) > 2 else ""
    rng = random.Random(seed)
    emit("BOOT", f"{BOOT:.6f}")

    from PySide6.QtCore import Qt, QTimer
    from PySide6.QtTest import QTest
    from PySide6.QtWidgets import QApplication

    from desktop.app import CoveApp
    from desktop.core.system.paths import app_paths
    from desktop.ui.theme import apply_palette

    paths = app_paths(basedir).ensure()
    if probes and not paths.probe_file.exists():
        shutil.copy(probes, paths.probe_file)

    qapp = QApplication.instance() or QApplication(sys.argv[:1])
    apply_palette(qapp)
    cove = CoveApp(paths)
    window, controller = cove.window, cove.controller
    gen = cove.settings.generation
    gen.n_threads = 1  # two harnesses run side by side on small machines
    gen.temperature = 0.9
    counter = 0
    pending_open: list[int] = []

    def now() -> str:
        return f"{time.monotonic():.6f}"

    def ask() -> None:
        nonlocal counter
        if controller.busy or not controller.model_ready:
            return
        counter += 1
        gen.max_tokens = rng.randint(30, 80)
        gen.seed = rng.randint(1, 1_000_000)
        if rng.random() < 0.7:
            text = f"{rng.choice(QUESTIONS)} (run {seed}, question {counter})"
            emit("ASK", sha1(text), now())
            composer = window.composer
            composer.setFocus()
            composer.clear()
            QTest.keyClicks(composer, text)
            QTest.keyClick(composer, Qt.Key.Key_Return)
        else:
            text = f"{rng.choice(ODD_QUESTIONS)} (run {seed}, question {counter})"
            emit("ASK", sha1(text), now())
            window.composer.setPlainText(text)
            window.send(text)

    def on_conversations(conversations: list) -> None:
        if pending_open or not conversations:
            return
        pending_open.append(1)
        if rng.random() < 0.5:  # continue what an earlier (killed) run left behind
            chosen = rng.choice(conversations).id
            emit("CONTINUE", chosen, now())
            controller.open_conversation(chosen)

    def on_model_state(state: str, _text: str) -> None:
        emit("MODEL", state, now())
        if state == "ready":
            QTimer.singleShot(rng.randint(0, 50), ask)

    def on_added(message: object) -> None:
        emit("SENT", message.conversation_id, message.id, sha1(message.content), now())

    def on_started(message: object) -> None:
        emit("START", message.id, now())
        if rng.random() < 0.25:
            QTimer.singleShot(rng.randint(30, 600), lambda mid=message.id: press_stop(mid))

    def press_stop(message_id: int) -> None:
        if controller.streaming_message_id == message_id and window.stop_button.isVisible():
            emit("STOP", message_id, now())
            QTest.mouseClick(window.stop_button, Qt.MouseButton.LeftButton)

    def on_updated(message_id: int, text: str) -> None:
        emit("STREAM", message_id, len(text), now())

    def on_finished(message_id: int, status: str, _stats: dict) -> None:
        emit("DONE", message_id, status, now())
        if rng.random() < 0.5:
            controller.new_conversation()
        QTimer.singleShot(rng.randint(0, 40), ask)

    cove.store.opened.connect(lambda: emit("OPENED", now()))
    cove.store.error.connect(lambda text: emit("ERROR", text.replace("\n", " ")))
    controller.problem.connect(lambda text: emit("PROBLEM", text.replace("\n", " ")))
    controller.conversations_changed.connect(on_conversations)
    controller.model_state.connect(on_model_state)
    controller.message_added.connect(on_added)
    controller.answer_started.connect(on_started)
    controller.answer_updated.connect(on_updated)
    controller.answer_finished.connect(on_finished)
    cove.start()
    code = qapp.exec()
    cove.shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
