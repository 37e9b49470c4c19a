"""The rounds of one answer that uses tools: what comes after the model wrote its calls.

An answer may take several rounds: the model writes calls, Cove runs them (each one the person
allowed) and gives the results back as ``tool`` messages, and the model goes on. The window and
the command line both drive these rounds; the decisions are made here, the same for both:

- no calls: the answer is done;
- a call Cove cannot read (bad JSON, no name): the model gets one corrective turn (the error as
  that call's result); a second unreadable round ends the answer with a message for the person;
- at most :data:`MAX_ROUNDS` rounds of calls per answer;
- a required tool (``require``) constrains the first round to a call of it; later rounds of that
  answer are plain answers (tools stay in the prompt, so the template shows the results, but no
  new calls are taken), so the required call cannot repeat forever.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from desktop.core.tools.specs import DENIED, ERROR, ToolCall, ToolResult

MAX_ROUNDS = 8
DONE, RUN, CORRECT, GIVE_UP, LIMIT = "done", "run", "correct", "give_up", "limit"
DENIED_TEXT = "The person denied this tool call. Do not call it again; answer without it."


@dataclass
class ToolRounds:
    """Counts the rounds of one answer and says what the next step is."""

    max_rounds: int = MAX_ROUNDS
    require: str = ""
    rounds: int = 0
    corrections: int = 0

    @property
    def required_now(self) -> str:
        """The tool the coming round must call ('' when none)."""
        return self.require if self.rounds == 0 else ""

    @property
    def takes_calls(self) -> bool:
        """False for the rounds after a required call (they answer in text)."""
        return not (self.require and self.rounds > 0)

    def next_step(self, calls: Sequence[ToolCall]) -> str:
        """After a round's output: DONE, RUN (results, then another round), CORRECT (like RUN,
        with the unreadable calls answered by their error), GIVE_UP or LIMIT."""
        if not calls:
            return DONE
        if self.rounds >= self.max_rounds:
            return LIMIT
        self.rounds += 1
        if any(call.error for call in calls):
            self.corrections += 1
            return CORRECT if self.corrections == 1 else GIVE_UP
        return RUN

    def problem(self, step: str, calls: Sequence[ToolCall]) -> str:
        """What the person is told when the rounds end early (GIVE_UP or LIMIT)."""
        if step == LIMIT:
            return (f"The model asked for tools {self.max_rounds} times in one answer; Cove stopped it there. "
                    "Ask again, or switch tools off for this conversation.")
        errors = "; ".join(call.error for call in calls if call.error)
        return f"The model wrote a tool call Cove could not read, twice ({errors}). The answer ends here."


def correction_result(call: ToolCall) -> ToolResult:
    """The result that answers an unreadable call: the error, and what to do about it."""
    return ToolResult(call.id, call.name, f"Error: {call.error}. Write the call again, as valid JSON.", ERROR)


def denied_result(call: ToolCall, server: str = "") -> ToolResult:
    """The result of a call the person denied."""
    return ToolResult(call.id, call.name, DENIED_TEXT, DENIED, server=server, arguments=call.arguments)


def unavailable_result(call: ToolCall, why: str) -> ToolResult:
    """The result of a call of a tool this conversation does not have (or a server that failed)."""
    return ToolResult(call.id, call.name, f"Error: {why}", ERROR, arguments=call.arguments)
