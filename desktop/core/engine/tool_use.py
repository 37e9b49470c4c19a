"""Tools for one answer: what the template is given, how calls are read, and the grammar that
makes a required call always parse.

The tools go to the chat template in its ``tools`` variable (OpenAI's shape, JSON-schema
parameters), which every tool-calling template reads. A template that has no place for tools
gets them described in the system message instead, with Hermes-style ``<tool_call>`` calls,
which small instruction-tuned models follow well enough. A required call is enforced with a
llama.cpp grammar built from the tool's JSON schema (llama-cpp-python's own
``json_schema_to_gbnf``), wrapped in the family's call markers: sampling can then only write
that call.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from llama_cpp.llama_grammar import LlamaGrammar, json_schema_to_gbnf

from desktop.core.tools.call_formats import ToolCallFormat, detect_call_format, required_call_shape
from desktop.core.tools.specs import ToolSpec

# The format Cove asks for when the template itself has no tool calls.
FALLBACK_FORMAT: ToolCallFormat = detect_call_format(
    "{% if tools %}{{ tools }}<tool_call>{{ tool_call }}</tool_call>{% endif %}")


@dataclass
class ToolRequest:
    """The tools one answer may call. ``required``: the name of a tool the output must call (its
    sampling is constrained to the call); ``take_calls``: False to read the output as plain text
    (the rounds after a required call)."""

    specs: list[ToolSpec] = field(default_factory=list)
    required: str = ""  # a tool's name, or ANY_TOOL
    take_calls: bool = True

    def spec(self, name: str) -> ToolSpec | None:
        """The tool called ``name``, if offered."""
        return next((s for s in self.specs if s.name == name), None)


def fallback_instructions(specs: Sequence[ToolSpec]) -> str:
    """The system-message text that offers ``specs`` to a model whose template has no tools."""
    listed = "\n".join(json.dumps(spec.for_template(), ensure_ascii=False) for spec in specs)
    return ("You can call these tools (JSON schemas):\n<tools>\n" + listed + "\n</tools>\n"
            "To call one, answer with only:\n<tool_call>\n{\"name\": \"TOOL\", \"arguments\": {...}}\n</tool_call>\n"
            "The result comes back in the next message.")


def with_fallback_tools(messages: Sequence[dict[str, Any]], specs: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    """``messages`` with the tools described in the system message (added when there is none),
    and tool results as user messages (templates without tools know no ``tool`` role)."""
    text = fallback_instructions(specs)
    shaped: list[dict[str, Any]] = []
    for message in messages:
        if message["role"] == "tool":
            shaped.append({"role": "user", "content": f"<tool_response>\n{message['content']}\n</tool_response>"})
        elif message["role"] == "assistant" and message.get("tool_calls"):
            calls = "\n".join("<tool_call>\n" + json.dumps({"name": c["function"]["name"], "arguments":
                              c["function"]["arguments"]}, ensure_ascii=False) + "\n</tool_call>"
                              for c in message["tool_calls"])
            content = (message.get("content") or "").strip()
            shaped.append({"role": "assistant", "content": f"{content}\n{calls}".strip()})
        else:
            shaped.append(dict(message))
    if shaped and shaped[0]["role"] == "system":
        shaped[0]["content"] = f"{shaped[0]['content']}\n\n{text}"
    else:
        shaped.insert(0, {"role": "system", "content": text})
    return shaped


def _literal(text: str) -> str:
    """``text`` as a GBNF string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r") + '"'


def call_grammar_text(fmt: ToolCallFormat, spec: ToolSpec) -> str:
    """GBNF that matches exactly one call of ``spec`` in ``fmt``'s markers."""
    prefix, schema, suffix = required_call_shape(fmt, spec)
    rules = json_schema_to_gbnf(json.dumps(schema))
    renamed = "\n".join("call-object ::=" + line[len("root ::="):] if line.startswith("root ::=") else line
                        for line in rules.splitlines())
    return f"root ::= {_literal(prefix)} call-object {_literal(suffix)}\n{renamed}\n"


def call_grammar(fmt: ToolCallFormat, spec: ToolSpec) -> LlamaGrammar:
    """The llama.cpp grammar for a required call of ``spec``."""
    return LlamaGrammar.from_string(call_grammar_text(fmt, spec), verbose=False)


def any_call_grammar_text(fmt: ToolCallFormat, specs: Sequence[ToolSpec]) -> str | None:
    """GBNF that matches one call of any of ``specs`` (the API's ``tool_choice: "required"``), or
    None where the format puts the name in the markers (one grammar per tool is needed there)."""
    shapes = [required_call_shape(fmt, spec) for spec in specs]
    if len({(prefix, suffix) for prefix, _schema, suffix in shapes}) != 1:
        return None
    prefix, _schema, suffix = shapes[0]
    rules = json_schema_to_gbnf(json.dumps({"oneOf": [schema for _p, schema, _s in shapes]}))
    renamed = "\n".join("call-object ::=" + line[len("root ::="):] if line.startswith("root ::=") else line
                        for line in rules.splitlines())
    return f"root ::= {_literal(prefix)} call-object {_literal(suffix)}\n{renamed}\n"


def any_call_grammar(fmt: ToolCallFormat, specs: Sequence[ToolSpec]) -> LlamaGrammar | None:
    """The llama.cpp grammar for a call of any of ``specs`` (None: see :func:`any_call_grammar_text`)."""
    text = any_call_grammar_text(fmt, specs)
    return LlamaGrammar.from_string(text, verbose=False) if text else None
