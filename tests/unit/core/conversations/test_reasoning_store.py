"""An answer's reasoning is stored apart from its text (schema 3), searchable on request, and kept by
imports and by the salvage of a damaged database."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from desktop.core.conversations.export_import import export_json, export_markdown, import_text
from desktop.core.conversations.migrations import MIGRATIONS, SCHEMA_VERSION
from desktop.core.conversations.records import STOPPED, ConversationTree, TreeMessage
from desktop.core.conversations.salvage import salvage
from desktop.core.conversations.store import Store


def make_v2_database(path: Path) -> None:
    db = sqlite3.connect(str(path), isolation_level=None)
    db.execute("BEGIN")
    MIGRATIONS[0](db)
    MIGRATIONS[1](db)
    db.execute("PRAGMA user_version = 2")
    db.execute("INSERT INTO conversations (id, title, created_at, updated_at, model, leaf_id)"
               " VALUES (1, 'Before thinking', 1.0, 2.0, '', 2)")
    db.execute("INSERT INTO messages (id, conversation_id, parent_id, role, content, created_at) VALUES"
               " (1, 1, NULL, 'user', 'Name a harbour.', 1.0), (2, 1, 1, 'assistant', 'Valletta.', 2.0)")
    db.execute("COMMIT")
    db.close()


def test_a_v2_database_migrates_with_empty_reasoning(tmp_path: Path):
    path = tmp_path / "cove.sqlite3"
    make_v2_database(path)
    store = Store(path)
    try:
        assert store.schema_version == SCHEMA_VERSION >= 3
        answer = store.get_message(2)
        assert answer is not None and (answer.content, answer.reasoning, answer.thinking_s) == ("Valletta.", "", 0.0)
        assert [h.message_id for h in store.search("valletta")] == [2]
        assert store.integrity_check() == "ok"
    finally:
        store.close()


def test_reasoning_is_stored_apart_and_searched_only_on_request(tmp_path: Path):
    store = Store(tmp_path / "cove.sqlite3")
    try:
        conversation, question = store.create_conversation_with_message("Maths", "", "What is 17 * 3?")
        answer = store.add_message(conversation.id, "assistant", "", parent_id=question.id, status="streaming")
        store.update_message(answer.id, "51", reasoning="Seventeen threes: 30 plus 21.", thinking_s=1.5)
        store.update_message(answer.id, "51.", status=STOPPED)  # a later flush keeps the reasoning
        stored = store.get_message(answer.id)
        assert stored is not None
        assert (stored.content, stored.reasoning, stored.thinking_s, stored.status) == (
            "51.", "Seventeen threes: 30 plus 21.", 1.5, STOPPED)
        assert store.search("seventeen") == []  # the question says "17", the reasoning "Seventeen"
        hits = store.search("seventeen", thinking=True)
        assert [(h.message_id, h.in_thinking) for h in hits] == [(answer.id, True)]
        assert [h.in_thinking for h in store.search("51", thinking=True)] == [False]
    finally:
        store.close()


def test_an_imported_tree_keeps_reasoning(tmp_path: Path):
    store = Store(tmp_path / "cove.sqlite3")
    try:
        tree = ConversationTree("Imported", 1.0, 2.0, [
            TreeMessage("q", None, "user", "Why is the sea salty?"),
            TreeMessage("a", "q", "assistant", "Rivers carry salts.", reasoning="Think about erosion.",
                        thinking_s=3.0)], leaf_key="a")
        [cid] = store.import_trees([tree])
        answer = store.active_path(cid)[-1]
        assert (answer.reasoning, answer.thinking_s) == ("Think about erosion.", 3.0)
    finally:
        store.close()


def test_salvage_keeps_reasoning(tmp_path: Path):
    source = tmp_path / "damaged.sqlite3"
    store = Store(source)
    conversation, question = store.create_conversation_with_message("Kept", "", "Hello?")
    store.add_message(conversation.id, "assistant", "Hi.", parent_id=question.id, reasoning="Greet back.",
                      thinking_s=0.4)
    store.close()
    target = tmp_path / "recovered.sqlite3"
    salvage(source, None, target)
    recovered = Store(target)
    try:
        answer = recovered.active_path(conversation.id)[-1]
        assert (answer.content, answer.reasoning, answer.thinking_s) == ("Hi.", "Greet back.", 0.4)
        assert [h.message_id for h in recovered.search("greet", thinking=True)] == [answer.id]
    finally:
        recovered.close()


def test_exports_carry_reasoning_and_json_brings_it_back(tmp_path: Path):
    store = Store(tmp_path / "cove.sqlite3")
    try:
        conversation, question = store.create_conversation_with_message("Tides", "", "Why are there tides?")
        store.add_message(conversation.id, "assistant", "The Moon's pull.", parent_id=question.id,
                          reasoning="Gravity gradient across Earth.", thinking_s=12.2)
        md = export_markdown(store, [conversation.id])
        assert ("## Assistant\n\n<details><summary>Thought for 12 s</summary>\n\nGravity gradient across Earth.\n\n"
                "</details>\n\nThe Moon's pull.") in md
        result = import_text(store, export_json(store, [conversation.id]))
        copy = store.active_path(result.conversation_ids[0])[-1]
        assert (copy.content, copy.reasoning, copy.thinking_s) == ("The Moon's pull.", "Gravity gradient across Earth.",
                                                                   12.2)
    finally:
        store.close()
