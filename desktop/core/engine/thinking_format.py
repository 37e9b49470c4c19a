"""What a thinking model's output looks like and how its thinking is switched (plain data).

:func:`desktop.core.engine.thinking.detect_format` reads a :class:`ThinkingFormat` from a chat
template; :mod:`desktop.core.engine.output_parser` splits output by it. Nothing here renders a
template, so the parser and the command line can use it without loading Jinja.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

NONE, TAGS, HARMONY = "none", "tags", "harmony"
SWITCH_NONE, SWITCH_EFFORT, SWITCH_FLAG = "", "reasoning_effort", "no_think"
SWITCH_VARIABLES = ("enable_thinking", "thinking")  # booleans templates read (Qwen3 style; Granite 3.3)
EFFORTS = ("low", "medium", "high")


@dataclass(frozen=True)
class ThinkingFormat:
    """What a model's output looks like and how its thinking is switched.

    ``kind``: 'none' (plain answers), 'tags' (reasoning between ``open`` and ``close``) or
    'harmony' (gpt-oss channels). ``opened_by_prompt``: the generation prompt already opens the
    block, so the output starts inside it. ``switch``: how thinking is turned off or set (a boolean
    variable of :data:`SWITCH_VARIABLES`, 'reasoning_effort', 'no_think' for a ``/no_think`` system
    flag, '' when it cannot be); ``default_on``: whether the template thinks when nothing is set.
    ``reads_reasoning``: the template takes a past answer's ``reasoning_content``.
    """

    kind: str = NONE
    open: str = ""
    close: str = ""
    opened_by_prompt: bool = False
    switch: str = SWITCH_NONE
    efforts: tuple[str, ...] = ()
    reads_reasoning: bool = False
    default_on: bool = True
    source: str = "template"        # 'template' or 'override' (markers the person set)
    notes: tuple[str, ...] = field(default=(), compare=False)

    @property
    def thinks(self) -> bool:
        """True for a model that writes reasoning before its answer."""
        return self.kind != NONE

    @property
    def can_switch_off(self) -> bool:
        """True when thinking can be turned off (effort levels only lower it)."""
        return self.switch in (*SWITCH_VARIABLES, SWITCH_FLAG)

    def summary(self) -> str:
        """A few words for the Library pane: 'thinks · can switch off'."""
        if not self.thinks:
            return "answers directly"
        if self.switch == SWITCH_EFFORT:
            return "thinks · effort " + "/".join(self.efforts)
        if self.can_switch_off:
            return "thinks · can switch off" if self.default_on else "thinks when switched on"
        return "thinks · always"

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for the library's records and the CLI's JSON)."""
        return {"kind": self.kind, "open": self.open, "close": self.close, "opened_by_prompt": self.opened_by_prompt,
                "switch": self.switch, "efforts": list(self.efforts), "reads_reasoning": self.reads_reasoning,
                "default_on": self.default_on, "source": self.source}


def with_override(fmt: ThinkingFormat, open_marker: str, close_marker: str) -> ThinkingFormat:
    """``fmt`` with the markers a person set for a model whose template Cove cannot read."""
    if not open_marker and not close_marker:
        return fmt
    return replace(fmt, kind=TAGS, open=open_marker, close=close_marker, source="override")


def thinking_variables(fmt: ThinkingFormat, think: bool, effort: str = "") -> dict[str, Any]:
    """The template variables that switch thinking the way ``fmt``'s template expects."""
    if fmt.switch in SWITCH_VARIABLES:
        return {fmt.switch: think}
    if fmt.switch == SWITCH_EFFORT:
        return {"reasoning_effort": effort if effort in fmt.efforts else "medium"}
    return {}


def apply_flag(fmt: ThinkingFormat, messages: list[dict[str, Any]], think: bool) -> list[dict[str, Any]]:
    """For templates switched by a ``/think`` or ``/no_think`` system flag: the messages with it."""
    if fmt.switch != SWITCH_FLAG:
        return messages
    flag = "/think" if think else "/no_think"
    if messages and messages[0].get("role") == "system":
        first = dict(messages[0], content=f"{messages[0].get('content', '')}\n{flag}".lstrip())
        return [first, *messages[1:]]
    return [{"role": "system", "content": flag}, *messages]
