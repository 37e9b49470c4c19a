"""The JSON (and Python-call) pieces of tool calls, shared by every family's reader in
:mod:`desktop.core.tools.call_formats`: a call from a decoded object, JSON that does not parse
turned into a call whose ``error`` tells the model why, fences and XML values."""

from __future__ import annotations

import ast
import json
import re
from typing import Any

from desktop.core.tools.specs import ToolCall


def error_call(name: str, error: str, raw: str) -> ToolCall:
    """A call that cannot be run: ``error`` says why, for the model."""
    return ToolCall(name, {}, error=error, raw=raw)


def loads(text: str, name: str, raw: str) -> tuple[Any, ToolCall | None]:
    """JSON ``text``, or the error call that says why it is not JSON."""
    try:
        return json.loads(text), None
    except ValueError as exc:
        what = f"the arguments of {name}" if name else "the tool call"
        detail = f"{exc.msg} at character {exc.pos}" if isinstance(exc, json.JSONDecodeError) else str(exc)
        return None, error_call(name, f"{what} are not valid JSON ({detail})", raw)


def name_in(text: str) -> str:
    """The tool name in JSON text that may not parse ('' when none can be seen)."""
    found = re.search(r'"(?:name|tool_name)"\s*:\s*"([^"]+)"', text)
    return found.group(1) if found else ""


def call_from_object(obj: Any, raw: str) -> ToolCall:
    """A call from one decoded JSON object (``name``/``tool_name``, ``arguments``/``parameters``,
    arguments given as an object or as JSON text, an optional ``id``/``tool_call_id``)."""
    if not isinstance(obj, dict):
        return error_call("", "the tool call is not a JSON object", raw)
    function = obj.get("function") if isinstance(obj.get("function"), dict) else {}
    name = str(obj.get("name") or obj.get("tool_name") or function.get("name") or "")
    arguments = obj.get("arguments", obj.get("parameters", function.get("arguments", {})))
    if isinstance(arguments, str):
        arguments, problem = loads(arguments or "{}", name, raw)
        if problem is not None:
            return problem
    only = next(iter(obj.items())) if len(obj) == 1 else ("", None)
    if not name and isinstance(only[1], dict) and only[0] not in ("arguments", "parameters", "function"):
        name, arguments = only  # {"NAME": {arguments}} (Apertus)
    if not name:
        return error_call("", "the tool call has no tool name", raw)
    if not isinstance(arguments, dict):
        return error_call(name, f"the arguments of {name} are not a JSON object", raw)
    call_id = str(obj.get("id") or obj.get("tool_call_id") or "")
    return ToolCall(name, arguments, call_id, raw=raw)


def calls_from_json(body: str, raw: str) -> list[ToolCall]:
    """The calls in ``body``: a JSON object or a list of them, or several one after another (one
    per line, or after a ``,`` or ``;``); JSON that does not parse ends them with an error call."""
    decoder, calls, at = json.JSONDecoder(), [], 0
    while True:
        while at < len(body) and body[at] in " \t\r\n,;":
            at += 1
        if at >= len(body):
            return calls or [error_call("", "the tool call is empty", raw)]
        try:
            value, at = decoder.raw_decode(body, at)
        except json.JSONDecodeError:
            return [*calls, loads(body[at:], name_in(body[at:]), raw)[1] or error_call("", "unreadable", raw)]
        calls += [call_from_object(item, raw) for item in (value if isinstance(value, list) else [value])]


def strip_fence(text: str) -> str:
    """``text`` without a ``` fence around it."""
    text = text.strip()
    fenced = re.fullmatch(r"```(?:json)?\s*(.*?)\s*```", text, re.DOTALL)
    return fenced.group(1) if fenced else text


def xml_value(value: str) -> Any:
    """An XML-style parameter value: JSON when it reads as JSON (numbers, true, objects…; so a
    string parameter "42" comes back as the number), else the text itself."""
    value = value.strip("\n")
    try:
        return json.loads(value)
    except ValueError:
        return value


class _JsonNames(ast.NodeTransformer):
    """JSON's ``true``, ``false`` and ``null`` inside Python-style arguments, as Python constants."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        names = {"true": True, "false": False, "null": None}
        return ast.Constant(names[node.id]) if node.id in names else node


def python_call(name: str, arguments: str, raw: str) -> ToolCall:
    """``tool.call(key="value", …)`` (Llama's built-in tool syntax)."""
    try:
        node = ast.parse(f"f({arguments})", mode="eval").body
        assert isinstance(node, ast.Call)
        return ToolCall(name, {kw.arg: ast.literal_eval(_JsonNames().visit(kw.value))
                               for kw in node.keywords if kw.arg}, raw=raw)
    except (SyntaxError, ValueError, AssertionError) as exc:
        return error_call(name, f"the arguments of {name} cannot be read ({exc})", raw)
