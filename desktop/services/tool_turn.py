"""The tool rounds of the answer being written, in the window: after the model wrote its calls,
ask the person about each one, run it, store its result as a ``tool`` message, and start the
next round. The decisions (corrective turn, round limit, a required tool) are
:class:`desktop.core.tools.tool_rounds.ToolRounds`'; nothing here blocks the GUI thread.

Signals:
    approval_needed(dict): a call waits for the person: ``server``, ``name``, ``arguments``,
        ``call_id``; answer with :meth:`decide` ('once', 'always' or 'deny').
    result_added(object): a tool message (a stored :class:`Message`) for the open conversation.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

from PySide6.QtCore import QObject, Signal

from desktop.core.conversations.store import COMPLETE, STREAMING, Message, Store
from desktop.core.system.settings import Settings
from desktop.core.tools import permissions
from desktop.core.tools.specs import ToolCall, ToolResult, ToolSpec
from desktop.core.tools.tool_rounds import DONE, ToolRounds, correction_result, denied_result, unavailable_result
from desktop.services.store_service import StoreService
from desktop.services.tool_service import ToolService

logger = logging.getLogger(__name__)

ONCE, ALWAYS, DENY = "once", "always", "deny"
Continue = Callable[[list[Message], Message], None]  # (the round's tool messages, the next answer's placeholder)
End = Callable[[str], None]                         # problem ('' when the answer simply ended)


class ToolTurn(QObject):
    """One answer's tool rounds (see the module's signals)."""

    approval_needed = Signal(dict)
    result_added = Signal(object)

    def __init__(self, tools: ToolService, store: StoreService, settings: Settings,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._tools = tools
        self._store = store
        self.settings = settings
        self.rounds = ToolRounds()
        self.specs: list[ToolSpec] = []
        self.active = False
        self._pending: dict[str, Any] | None = None  # the call waiting for the person
        self._cancelled = False

    def begin(self, specs: list[ToolSpec], require: str) -> None:
        """A new answer with these tools (``require``: a tool its first round must call)."""
        self.rounds = ToolRounds(require=require if any(s.name == require for s in specs) else "")
        self.specs, self.active, self._cancelled, self._pending = list(specs), bool(specs), False, None

    def prepare(self, names: list[str], require: str, ready: Callable[[], None],
                problem: Callable[[str], None]) -> None:
        """Before a new answer: start the servers among ``names`` (the conversation's), then
        :meth:`begin` with their tools and call ``ready()``; without servers, at once."""
        if not names:
            self.begin([], "")
            ready()
            return

        def started(specs: list[ToolSpec]) -> None:
            self.begin(specs, require)
            ready()

        self._tools.ensure_started(names, started, problem)

    def request(self) -> dict[str, Any]:
        """What the generation thread is given for the coming round ({} without tools)."""
        if not self.active:
            return {}
        return {"specs": [asdict(s) for s in self.specs], "required": self.rounds.required_now,
                "take_calls": self.rounds.takes_calls}

    def cancel(self) -> None:
        """Stop: a waiting call is not run, no further round starts."""
        self._cancelled = True
        if self._pending is not None:
            pending, self._pending = self._pending, None
            pending["end"]("")

    def after_round(self, conversation_id: int, answer: Message, calls: list[dict[str, Any]],
                    on_continue: Continue, on_end: End) -> None:
        """The round that wrote ``answer`` (with ``calls``) ended: run its calls, or end."""
        parsed = [ToolCall.from_dict(c) for c in calls]
        step = self.rounds.next_step(parsed) if self.active and not self._cancelled else DONE
        if step == DONE:
            on_end("")
            return
        if step not in ("run", "correct"):
            on_end(self.rounds.problem(step, parsed))
            return
        state = {"cid": conversation_id, "parent": answer.id, "calls": parsed, "done": [],
                 "continue": on_continue, "end": on_end}
        self._next_call(state)

    # -- one call after the other ------------------------------------------------------------
    def _next_call(self, state: dict[str, Any]) -> None:
        if self._cancelled:
            state["end"]("")
            return
        if not state["calls"]:
            self._next_round(state)
            return
        call: ToolCall = state["calls"].pop(0)
        spec = next((s for s in self.specs if s.name == call.name), None)
        if call.error:
            self._store_result(state, correction_result(call))
        elif spec is None:
            self._store_result(state, unavailable_result(call, f"there is no tool called {call.name!r} here"))
        elif permissions.always_allowed(self.settings.tool_permissions, spec.server, spec.name):
            self._run(state, call, spec)
        else:
            self._pending = {**state, "call": call, "spec": spec}
            self.approval_needed.emit({"server": spec.server, "name": call.name, "arguments": call.arguments,
                                       "call_id": call.id})

    def decide(self, decision: str) -> None:
        """The person's answer to approval_needed: 'once', 'always' or 'deny'."""
        pending, self._pending = self._pending, None
        if pending is None:
            return
        call, spec = pending.pop("call"), pending.pop("spec")
        if decision == DENY:
            self._store_result(pending, denied_result(call, spec.server))
            return
        if decision == ALWAYS:
            permissions.allow_always(self.settings.tool_permissions, spec.server, spec.name)
        self._run(pending, call, spec)

    def _run(self, state: dict[str, Any], call: ToolCall, spec: ToolSpec) -> None:
        started = time.perf_counter()

        def done(result: ToolResult) -> None:
            seconds = result.duration_s or (time.perf_counter() - started)
            self._store_result(state, ToolResult(call.id, call.name, result.content, result.status, seconds,
                                                 spec.server, call.arguments))
        self._tools.call(spec.server, spec.name, call.arguments, done)

    def _store_result(self, state: dict[str, Any], result: ToolResult) -> None:
        cid, parent = state["cid"], state["parent"]

        def job(store: Store) -> Message:
            return store.add_message(cid, "tool", result.content, parent_id=parent, status=COMPLETE,
                                     tool=result.to_dict())

        def stored(message: Message) -> None:
            state["parent"] = message.id
            state["done"].append(message)
            self.result_added.emit(message)
            self._next_call(state)

        self._store.submit(job, stored, lambda exc: state["end"](f"The tool result could not be saved: {exc}"))

    def _next_round(self, state: dict[str, Any]) -> None:
        cid, parent = state["cid"], state["parent"]
        self._store.submit(lambda store: store.add_message(cid, "assistant", "", parent_id=parent, status=STREAMING),
                           lambda answer: state["continue"](state["done"], answer),
                           lambda exc: state["end"](f"The answer could not be continued: {exc}"))
