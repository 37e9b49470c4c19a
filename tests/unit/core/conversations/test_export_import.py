"""Export (Markdown, Cove JSON), import (Cove JSON, ChatGPT), round trips and bad files."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from desktop.core.conversations.export_import import (
    FORMAT,
    ImportFormatError,
    export_json,
    export_markdown,
    import_file,
    import_text,
    write_export,
)
from desktop.core.conversations.store import STOPPED, STREAMING, Store

FIXTURE = Path(__file__).resolve().parents[3] / "fixtures" / "chatgpt_conversations.json"
CODE = "Here:\n\n```python\ndef add(a, b):\n    return a + b\n```\n\nDone."


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "a.sqlite3")
    yield s
    s.close()


@pytest.fixture
def other(tmp_path: Path):
    s = Store(tmp_path / "b.sqlite3")
    yield s
    s.close()


def branched(store: Store) -> int:
    """A conversation with a system prompt, a regenerated answer, an edited question, stats,
    settings, a pin and an incomplete answer."""
    conv = store.create_conversation("Adding numbers · ünïcödé 🙂")
    sys_msg = store.add_message(conv.id, "system", "Answer briefly.")
    q1 = store.add_message(conv.id, "user", "How do I add two numbers in Python?", parent_id=sys_msg.id)
    store.add_message(conv.id, "assistant", "Use +.", parent_id=q1.id,
                      stats={"completion_tokens": 3, "decode_tokens_per_s": 41.25, "nan": float("nan")})
    a1b = store.add_message(conv.id, "assistant", CODE, parent_id=q1.id, stats={"completion_tokens": 30})
    q2 = store.add_message(conv.id, "user", "And three?", parent_id=a1b.id)
    store.add_message(conv.id, "assistant", "add(add(a, b), c)", parent_id=q2.id)
    q2b = store.edit_user_message(q2.id, "And three numbers?")
    store.add_message(conv.id, "assistant", "sum([a, b, c]) and then some", parent_id=q2b.id, status=STOPPED)
    store.set_pinned(conv.id, True)
    store.set_conversation_settings(conv.id, {"model": "x.gguf", "temperature": 0.3, "system_prompt": "Brief."})
    return conv.id


# -- round trip -------------------------------------------------------------------------------------
def test_json_round_trip_is_byte_identical_with_branches(store: Store, other: Store) -> None:
    branched(store)
    second = store.create_conversation("Second")
    store.add_message(second.id, "user", "streaming one", status=STREAMING)
    first = export_json(store)
    result = import_text(other, first)
    assert (result.source, result.conversations, result.messages) == ("cove", 2, 9)
    assert export_json(other) == first
    # Importing into a store that already has conversations (other ids) still exports the same.
    again = import_text(store, first)
    assert export_json(store, again.conversation_ids) == first


def test_json_export_holds_every_branch_with_keys_not_ids(store: Store) -> None:
    cid = branched(store)
    doc = json.loads(export_json(store, [cid]))
    assert doc["format"] == FORMAT and doc["version"] == 1
    [conv] = doc["conversations"]
    assert "id" not in conv and conv["pinned"] is True and conv["settings"]["temperature"] == 0.3
    keys = [m["key"] for m in conv["messages"]]
    assert keys == list(range(1, 9))
    parents = [m["parent_key"] for m in conv["messages"]]
    assert parents == [None, 1, 2, 2, 4, 5, 4, 7]
    assert conv["leaf_key"] == 8
    assert conv["messages"][2]["stats"]["nan"] is None  # JSON has no NaN
    assert conv["messages"][-1]["status"] == STOPPED


def test_markdown_shows_the_shown_branch_with_roles_and_code(store: Store) -> None:
    cid = branched(store)
    thread = store.create_conversation("Another")
    store.add_message(thread.id, "user", "Hi")
    md = export_markdown(store, [cid])
    assert md.startswith("# Adding numbers · ünïcödé 🙂\n")
    assert "## System\n\nAnswer briefly." in md
    assert "## User\n\nHow do I add two numbers in Python?" in md
    assert "```python\ndef add(a, b):\n    return a + b\n```" in md
    assert "Use +." not in md and "add(add(a, b), c)" not in md  # other branches are not shown
    assert "And three numbers?" in md and "*(incomplete answer: stopped)*" in md
    assert md.index("## User") < md.index("## Assistant")
    everything = export_markdown(store)
    assert everything.count("\n---\n") == 1 and "# Another" in everything


def test_write_export_and_unknown_or_deleted_ids(store: Store, tmp_path: Path) -> None:
    cid = branched(store)
    out = tmp_path / "out" / "x.json"
    assert write_export(store, out, "json", [cid]) == 1
    assert json.loads(out.read_text())["conversations"][0]["title"].startswith("Adding")
    with pytest.raises(LookupError):
        export_json(store, [cid + 100])
    store.delete_conversation(cid)
    with pytest.raises(LookupError):
        export_markdown(store, [cid])
    assert json.loads(export_json(store))["conversations"] == []


# -- ChatGPT --------------------------------------------------------------------------------------
def test_chatgpt_export_imports_with_order_and_branches(store: Store) -> None:
    result = import_file(store, FIXTURE)
    assert (result.source, result.conversations, result.messages) == ("chatgpt", 3, 11)
    assert result.skipped == 4  # hidden system/context, tool call, tool output (reasoning is kept)
    sorting, chart, voice = result.conversation_ids

    conv = store.get_conversation(sorting)
    assert conv.title == "Sorting a list in Python" and conv.created_at == 1714123456.123456
    shown = store.active_path(sorting)
    assert [m.role for m in shown] == ["user", "assistant", "user", "assistant"]
    assert shown[0].content == "How do I sort a list of dicts by a key in Python?"
    assert "itemgetter" in shown[1].content  # current_node's branch: the regenerated answer
    assert "| key missing |" in shown[3].content
    assert [m.created_at for m in shown] == sorted(m.created_at for m in shown)
    versions = store.siblings(shown[1].id)
    assert len(versions) == 2 and "lambda" in versions[0].content  # the first answer stays, first
    assert all(m.role != "system" for m in store.all_messages(sorting))  # the empty hidden one is gone

    first, answer = store.active_path(chart)
    assert first.content == "[image]\n\nHere are last quarter's sales. Plot them per month."
    assert answer.content.startswith("Here is the chart") and answer.parent_id == first.id  # tool steps skipped
    edits = store.siblings(first.id)
    assert [m.content.split("\n\n")[1] for m in edits] == [
        "Here are last quarter's sales. Plot them per month.", "Here are last quarter's sales. Just tell me the best month."]

    question, reply = store.active_path(voice)
    assert question.content.startswith("What time does the café on Rue Cler open on Sundays?")
    assert "[audio]" in question.content
    assert reply.status == STOPPED and "Rue Cler" in reply.content
    assert reply.reasoning == "The user asks about opening hours."  # the 'thoughts' node before it
    assert question.reasoning == ""
    assert store.search("cafe rue") and store.search("itemgetter")


def test_chatgpt_zip_and_single_conversation(store: Store, tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("chat.html", "<html></html>")
        archive.writestr("conversations.json", FIXTURE.read_text(encoding="utf-8"))
    (tmp_path / "export.zip").write_bytes(buffer.getvalue())
    assert import_file(store, tmp_path / "export.zip").conversations == 3
    one = json.loads(FIXTURE.read_text(encoding="utf-8"))[0]
    assert import_text(store, json.dumps(one)).messages == 5


def test_chatgpt_oddities_are_handled(store: Store) -> None:
    data = [{"title": None, "create_time": None, "current_node": "gone", "mapping": {
        "r": {"message": None, "parent": None, "children": ["u", "ghost"]},
        "u": {"message": {"author": {"role": "user"}, "content": {"content_type": "text", "parts": ["hi", None]}},
              "parent": "r", "children": []},
        "loop1": {"message": None, "parent": "loop2", "children": []},
        "loop2": {"message": None, "parent": "loop1", "children": []},
        "orphan": {"message": {"author": {"role": "assistant"}, "content": {"content_type": "weird", "text": "odd"}},
                   "parent": "not-there", "children": []},
    }}]
    result = import_text(store, json.dumps(data))
    [cid] = result.conversation_ids
    assert store.get_conversation(cid).title == "Imported chat"
    assert sorted(m.content for m in store.all_messages(cid)) == ["hi", "odd"]


# -- bad files: clear message, nothing imported ---------------------------------------------------------
@pytest.mark.parametrize("text, needle", [
    ("{not json", "not valid JSON (line 1"),
    ("", "not valid JSON"),
    ("[1, 2, 3]", "neither a Cove export"),
    ('{"hello": "world"}', "neither a Cove export"),
    ('{"format": "something-else", "version": 1, "conversations": []}', "Unknown export format"),
    (json.dumps({"format": FORMAT, "version": 2, "conversations": []}), "newer Cove (format version 2)"),
    (json.dumps({"format": FORMAT, "version": "1", "conversations": []}), "version"),
    (json.dumps({"format": FORMAT, "version": 1, "conversations": {}}), "must be a list"),
    (json.dumps({"format": FORMAT, "version": 1, "conversations": [{"title": "x"}]}), "'messages' is missing"),
    (json.dumps({"format": FORMAT, "version": 1, "conversations": [{"title": "x", "messages": []}]}), "created_at"),
])
def test_bad_files_are_refused_with_a_clear_message(store: Store, text: str, needle: str) -> None:
    with pytest.raises(ImportFormatError) as err:
        import_text(store, text)
    assert needle in str(err.value) and "Nothing was imported" in str(err.value)
    assert isinstance(err.value, ValueError)
    assert store.list_conversations() == []


def test_a_bad_conversation_late_in_the_file_imports_nothing(store: Store, other: Store) -> None:
    branched(store)
    store.create_conversation("empty")
    doc = json.loads(export_json(store))
    doc["conversations"].append(json.loads(json.dumps(doc["conversations"][0])))
    doc["conversations"][-1]["messages"][3]["role"] = "robot"
    with pytest.raises(ImportFormatError, match="robot"):
        import_text(other, json.dumps(doc))
    doc["conversations"][-1]["messages"][3]["role"] = "user"
    doc["conversations"][-1]["messages"][3]["parent_key"] = 99
    with pytest.raises(ImportFormatError, match="parent 99"):
        import_text(other, json.dumps(doc))
    doc["conversations"][-1]["messages"][0]["parent_key"] = 8  # a loop: 1 -> 8 -> ... -> 1
    doc["conversations"][-1]["messages"][3]["parent_key"] = 2
    with pytest.raises(ImportFormatError, match="loop"):
        import_text(other, json.dumps(doc))
    assert other.list_conversations() == [] and other.message_count() == 0


def test_out_of_order_messages_are_put_parents_first(store: Store, other: Store) -> None:
    branched(store)
    doc = json.loads(export_json(store))
    doc["conversations"][0]["messages"].reverse()
    import_text(other, json.dumps(doc))
    assert [m.content for m in other.active_path(1)] == [m.content for m in store.active_path(1)]


def test_unreadable_and_non_text_files(store: Store, tmp_path: Path) -> None:
    with pytest.raises(ImportFormatError, match="cannot be read"):
        import_file(store, tmp_path / "missing.json")
    (tmp_path / "bin.json").write_bytes(b"\xff\xfe\x00garbage\x80")
    with pytest.raises(ImportFormatError, match="not a text file"):
        import_file(store, tmp_path / "bin.json")
    (tmp_path / "bad.zip").write_bytes(b"PK\x03\x04 broken")
    with pytest.raises(ImportFormatError, match="ZIP"):
        import_file(store, tmp_path / "bad.zip")
    assert store.list_conversations() == []
