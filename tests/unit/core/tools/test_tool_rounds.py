"""The rounds of an answer with tools: one corrective turn for an unreadable call, then a message;
a limit on rounds; a required tool only for the first round; the person's decisions remembered
per server, and kept by the settings file."""

from __future__ import annotations

from pathlib import Path

from desktop.core.system.settings import Settings, load_settings, save_settings
from desktop.core.tools import permissions
from desktop.core.tools.specs import DENIED, ERROR, ToolCall, ToolResult
from desktop.core.tools.tool_rounds import (
    CORRECT,
    DONE,
    GIVE_UP,
    LIMIT,
    RUN,
    ToolRounds,
    correction_result,
    denied_result,
)

GOOD = ToolCall("get_weather", {"city": "Paris"}, "call_1")
BAD = ToolCall("get_weather", {}, "call_2", error="the arguments of get_weather are not valid JSON", raw="{city:")


def test_an_answer_without_calls_is_done():
    assert ToolRounds().next_step([]) == DONE


def test_a_bad_call_gets_one_corrective_turn_then_the_person_is_told():
    rounds = ToolRounds()
    assert rounds.next_step([BAD, GOOD]) == CORRECT
    result = correction_result(BAD)
    assert result.status == ERROR and "not valid JSON" in result.content and "again" in result.content
    assert rounds.next_step([BAD]) == GIVE_UP
    assert "could not read, twice" in rounds.problem(GIVE_UP, [BAD]) and "not valid JSON" in rounds.problem(GIVE_UP,
                                                                                                         [BAD])


def test_rounds_are_limited_per_answer():
    rounds = ToolRounds(max_rounds=3)
    assert [rounds.next_step([GOOD]) for _ in range(4)] == [RUN, RUN, RUN, LIMIT]
    assert "3 times" in rounds.problem(LIMIT, [GOOD])


def test_a_required_tool_binds_the_first_round_only():
    rounds = ToolRounds(require="get_weather")
    assert rounds.required_now == "get_weather" and rounds.takes_calls
    assert rounds.next_step([GOOD]) == RUN
    assert rounds.required_now == "" and not rounds.takes_calls  # then the model answers in text


def test_a_denied_call_goes_back_as_denied():
    result = denied_result(GOOD, "weather")
    assert result.status == DENIED and "denied" in result.content and result.server == "weather"
    assert ToolResult.from_dict(result.to_dict(), result.content) == result


def test_decisions_are_per_server_and_survive_the_settings_file(tmp_path: Path):
    settings = Settings()
    perms = settings.tool_permissions
    permissions.approve_start(perms, "weather", "python server.py stdio")
    permissions.allow_always(perms, "weather", "get_weather")
    permissions.set_tool_enabled(perms, "weather", "delete_everything", False)
    save_settings(tmp_path / "settings.json", settings)
    again = load_settings(tmp_path / "settings.json").tool_permissions
    assert permissions.start_approved(again, "weather", "python server.py stdio")
    assert not permissions.start_approved(again, "weather", "python server.py stdio --evil")  # a changed command asks again
    assert permissions.always_allowed(again, "weather", "get_weather")
    assert not permissions.always_allowed(again, "other", "get_weather")  # per server
    assert not permissions.tool_enabled(again, "weather", "delete_everything")
    permissions.set_tool_enabled(again, "weather", "delete_everything", True)
    assert permissions.tool_enabled(again, "weather", "delete_everything")


def test_conversation_tools_are_read_from_settings_with_bad_values_dropped():
    from desktop.core.system.settings import GenerationSettings

    settings = GenerationSettings.from_dict({"tools": ["weather", 3, None], "require_tool": "get_weather"})
    assert settings.tools == ["weather"] and settings.require_tool == "get_weather"
    assert GenerationSettings.from_dict({"tools": "weather"}).tools == []
