"""Tool calls and their results are messages of the conversation tree (schema 4): a v3 database
migrates without losing a message or its search, and the calls survive reopening, branches,
Markdown and JSON exports, JSON import, the prompt given back to the template, and salvage."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from desktop.core.conversations.export_import import export_json, export_markdown, import_text
from desktop.core.conversations.migrations import MIGRATIONS
from desktop.core.conversations.recovery import check_database
from desktop.core.conversations.salvage import salvage
from desktop.core.conversations.store import Store
from desktop.core.engine.prompt import messages_for_model

CALL = {"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris", "when": {"day": "today"}}}
RESULT = {"call_id": "call_1", "name": "get_weather", "status": "ok", "duration_s": 0.125, "server": "weather",
          "arguments": CALL["arguments"]}


def tool_conversation(store: Store) -> tuple[int, list[int]]:
    """User question, an answer that calls a tool, the tool's result, the final answer."""
    conversation, user = store.create_conversation_with_message("Weather", "m.gguf", "Weather in Paris?")
    calling = store.add_message(conversation.id, "assistant", "Let me look.", parent_id=user.id, tool_calls=[CALL])
    result = store.add_message(conversation.id, "tool", "Sunny, 21 °C in Paris", parent_id=calling.id, tool=RESULT)
    final = store.add_message(conversation.id, "assistant", "It is sunny and 21 °C.", parent_id=result.id)
    return conversation.id, [user.id, calling.id, result.id, final.id]


def make_v3_database(path: Path) -> None:
    db = sqlite3.connect(str(path), isolation_level=None)
    db.execute("BEGIN")
    for step in MIGRATIONS[:3]:
        step(db)
    db.execute("PRAGMA user_version = 3")
    db.execute("INSERT INTO conversations (id, title, created_at, updated_at, model, leaf_id)"
               " VALUES (1, 'Before tools', 1.0, 3.0, '', 3)")
    db.execute("INSERT INTO messages (id, conversation_id, parent_id, role, content, created_at, reasoning) VALUES"
               " (1, 1, NULL, 'user', 'Name a harbour.', 1.0, ''),"
               " (2, 1, 1, 'assistant', 'Valletta.', 2.0, 'Malta has deep harbours.'),"
               " (3, 1, 1, 'assistant', 'Marsaxlokk.', 3.0, '')")
    db.execute("COMMIT")
    db.close()


def test_a_v3_database_migrates_keeping_messages_branches_and_search(tmp_path: Path) -> None:
    path = tmp_path / "cove.sqlite3"
    make_v3_database(path)
    store = Store(path)
    try:
        assert store.schema_version == 4
        assert [m.content for m in store.active_path(1)] == ["Name a harbour.", "Marsaxlokk."]
        assert [m.id for m in store.siblings(3)] == [2, 3]
        assert [h.message_id for h in store.search("valletta")] == [2]
        assert [h.message_id for h in store.search("harbours", thinking=True)] == [2]
        assert store.integrity_check() == "ok"
        new = store.add_message(1, "tool", "a result text", parent_id=3, tool=RESULT)  # the new role is allowed
        assert [h.message_id for h in store.search("result")] == [new.id]
        with pytest.raises(sqlite3.IntegrityError):
            store.add_message(1, "robot", "no such role", parent_id=3)
    finally:
        store.close()
    assert check_database(path) is None  # the migrated schema is exactly the reference one


def test_calls_and_results_survive_reopening(tmp_path: Path) -> None:
    path = tmp_path / "cove.sqlite3"
    store = Store(path)
    cid, ids = tool_conversation(store)
    store.close()
    store = Store(path)
    try:
        path_messages = store.active_path(cid)
        assert [m.role for m in path_messages] == ["user", "assistant", "tool", "assistant"]
        assert path_messages[1].tool_calls == [CALL]
        assert path_messages[2].tool == RESULT and path_messages[2].content == "Sunny, 21 °C in Paris"
        store.update_message(ids[1], "Let me look again.", tool_calls=[{**CALL, "id": "call_9"}])
        assert store.get_message(ids[1]).tool_calls[0]["id"] == "call_9"
    finally:
        store.close()


def test_the_prompt_gives_calls_and_results_back_as_templates_read_them(tmp_path: Path) -> None:
    store = Store(tmp_path / "cove.sqlite3")
    try:
        cid, _ids = tool_conversation(store)
        messages = messages_for_model(store.active_path(cid))
    finally:
        store.close()
    assert [m["role"] for m in messages] == ["user", "assistant", "tool", "assistant"]
    assert messages[1]["tool_calls"] == [{"id": "call_1", "type": "function",
                                          "function": {"name": "get_weather", "arguments": CALL["arguments"]}}]
    assert messages[2] == {"role": "tool", "tool_call_id": "call_1", "name": "get_weather",
                           "content": "Sunny, 21 °C in Paris"}


def test_an_answer_that_only_calls_is_kept_in_the_prompt(tmp_path: Path) -> None:
    store = Store(tmp_path / "cove.sqlite3")
    try:
        conversation, user = store.create_conversation_with_message("Calls", "", "Add 2 and 3")
        store.add_message(conversation.id, "assistant", "", parent_id=user.id, tool_calls=[CALL])
        messages = messages_for_model(store.active_path(conversation.id))
    finally:
        store.close()
    assert [m["role"] for m in messages] == ["user", "assistant"] and messages[1]["content"] == ""


def test_exports_contain_the_calls_and_json_import_restores_them(tmp_path: Path) -> None:
    store, other = Store(tmp_path / "a.sqlite3"), Store(tmp_path / "b.sqlite3")
    try:
        cid, _ids = tool_conversation(store)
        markdown = export_markdown(store, [cid])
        assert "Tool call `get_weather`" in markdown and '"city": "Paris"' in markdown
        assert "## Tool result: get_weather (ok, 0.12 s)" in markdown and "Sunny, 21 °C in Paris" in markdown
        exported = export_json(store, [cid])
        document = json.loads(exported)
        roles = [m["role"] for m in document["conversations"][0]["messages"]]
        assert roles == ["user", "assistant", "tool", "assistant"]
        result = import_text(other, exported)
        imported = other.active_path(result.conversation_ids[0])
        assert imported[1].tool_calls == [CALL] and imported[2].tool == RESULT
        assert export_json(other) == exported  # byte-identical round trip
    finally:
        store.close()
        other.close()


def test_a_conversation_without_tools_exports_as_before(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.sqlite3")
    try:
        store.create_conversation_with_message("Plain", "", "Hello")
        assert "tool" not in export_json(store)
    finally:
        store.close()


def test_salvage_keeps_tool_messages(tmp_path: Path) -> None:
    source = tmp_path / "cove.sqlite3"
    store = Store(source)
    cid, _ids = tool_conversation(store)
    store.close()
    target = tmp_path / "salvaged.sqlite3"
    salvage(source, None, target)
    rescued = Store(target)
    try:
        messages = rescued.active_path(cid)
        assert [m.role for m in messages] == ["user", "assistant", "tool", "assistant"]
        assert messages[1].tool_calls == [CALL] and messages[2].tool == RESULT
    finally:
        rescued.close()
