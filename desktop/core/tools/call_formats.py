"""How each model family writes a tool call, read from its chat template, and the calls read
back from the model's output.

What the families write (the call section the scanner hands over is given whole, markers kept):

- ``hermes``: ``<tool_call>{"name": …, "arguments": {…}}</tool_call>``, one section per call
  (Qwen 2.5/3, QwQ, Hermes 2 Pro/3, Granite 4, MiMo, Apriel…); inside the same markers Qwen3-Coder,
  Nemotron and Seed-OSS write ``<function=NAME><parameter=KEY>VALUE</parameter></function>`` and
  GLM ``NAME<arg_key>K</arg_key><arg_value>V</arg_value>``: read too.
- ``llama3``: a bare ``{"name": …, "parameters": {…}}`` as the whole answer, or
  ``<|python_tag|>`` followed by that JSON or ``tool.call(key="value")`` (Llama 3.1-3.3).
- ``mistral``: ``[TOOL_CALLS][{"name": …, "arguments": {…}, "id": …}, …]`` (Nemo) or
  ``[TOOL_CALLS]NAME[ARGS]{…}`` per call (Mistral Small 3.2, Devstral, Ministral 3).
- ``granite``: ``<|tool_call|>[{"name": …, "arguments": {…}}, …]`` (Granite 3.x).
- ``command_r``: ``<|START_ACTION|>[{"tool_call_id": …, "tool_name": …, "parameters": {…}}]<|END_ACTION|>``
  (Command R7B, Command A) and ``Action: ```json [{"tool_name": …, "parameters": …}] ```" (Command R+).
- ``deepseek``: ``<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>NAME`` and the
  arguments as a fenced JSON block (R1, V3), or ``NAME<｜tool▁sep｜>{…}`` (V3.1), per call.
- ``kimi``: ``<|tool_calls_section_begin|><|tool_call_begin|>functions.NAME:0``
  ``<|tool_call_argument_begin|>{…}<|tool_call_end|>…``.
- ``gemma``: ``<|tool_call>call:NAME{…}<tool_call|>`` (Gemma 4).
- ``harmony``: ``<|start|>assistant<|channel|>commentary to=functions.NAME <|constrain|>json<|message|>{…}<|call|>``
  (gpt-oss; its channels are read by :mod:`desktop.core.engine.output_parser`).
- ``hermes`` with other tags: ``<tool_calls>[{…}, …]</tool_calls>`` (Apriel, MiniMax-M1),
  ``<TOOLCALL>[…]</TOOLCALL>`` (Nemotron Nano 2), ``<seed:tool_call>`` (Seed-OSS, the XML body),
  ``<|tools_prefix|>[{"NAME": {…}}]<|tools_suffix|>`` (Apertus).
- ``functionary``: ``<function=NAME>{…}</function>`` (Functionary 3.1); ``firefunction``:
  `` functools[{"name": …, "arguments": {…}}, …]``.
- ``invoke``: ``<invoke name="NAME"><parameter name="KEY">VALUE</parameter></invoke>`` inside
  ``<minimax:tool_call>`` (MiniMax-M2), ``<｜DSML｜function_calls>`` or ``<｜DSML｜tool_calls>``
  (DeepSeek V3.2, V4, every tag with the ``｜DSML｜`` prefix) or ``<atem:function_calls>`` (Muse).
- ``pythonic``: ``<|tool_call_start|>[NAME(key="value"), …]<|tool_call_end|>`` (LFM2);
  ``solar``: ``<|tool_call:begin|>ID<|tool_call:name|>NAME<|tool_call:args|>{…}<|tool_call:end|>``.
- ``json``: a template that mentions tools in no way Cove knows: a JSON object (or a list of
  them, maybe in a ```json fence) with a name and arguments, as the whole answer.
"""

from __future__ import annotations

import ast
import json
import re
from dataclasses import dataclass
from typing import Any

from desktop.core.tools.call_json import call_from_object
from desktop.core.tools.call_json import calls_from_json as _calls_from_json
from desktop.core.tools.call_json import error_call as _error_call
from desktop.core.tools.call_json import loads as _loads
from desktop.core.tools.call_json import python_call as _python_call
from desktop.core.tools.call_json import strip_fence as _strip_fence
from desktop.core.tools.call_json import xml_value as _xml_value
from desktop.core.tools.specs import ToolCall, ToolSpec

NONE = "none"
BARE = ("llama3", "json")  # formats whose call may be a bare JSON answer, without a marker


@dataclass(frozen=True)
class ToolCallFormat:
    """How a family writes calls: ``open`` starts a call section and ``close`` ends it ('' for a
    section that ends where its JSON ends, or at the end of the output). ``fenced``: the call
    follows ``open`` in a ``` fence, which ``close`` ends (Command R+'s ``Action:``)."""

    kind: str = NONE
    open: str = ""
    close: str = ""
    fenced: bool = False

    @property
    def bare_json(self) -> bool:
        """True when a call may be the answer itself, as JSON without a marker."""
        return self.kind in BARE


_FORMATS = {
    "harmony": ToolCallFormat("harmony", "<|start|>", "<|call|>"),
    "deepseek": ToolCallFormat("deepseek", "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>"),
    "kimi": ToolCallFormat("kimi", "<|tool_calls_section_begin|>", "<|tool_calls_section_end|>"),
    "command_r": ToolCallFormat("command_r", "<|START_ACTION|>", "<|END_ACTION|>"),
    "command_r_plus": ToolCallFormat("command_r", "Action:", "```", fenced=True),
    "mistral": ToolCallFormat("mistral", "[TOOL_CALLS]", ""),
    "granite": ToolCallFormat("granite", "<|tool_call|>", ""),
    "gemma": ToolCallFormat("gemma", "<|tool_call>", "<tool_call|>"),
    "hermes": ToolCallFormat("hermes", "<tool_call>", "</tool_call>"),
    "llama3": ToolCallFormat("llama3", "<|python_tag|>", ""),
    "json": ToolCallFormat("json", "", ""),
    "<tool_calls>": ToolCallFormat("hermes", "<tool_calls>", "</tool_calls>"),
    "<TOOLCALL>": ToolCallFormat("hermes", "<TOOLCALL>", "</TOOLCALL>"),
    "<seed:tool_call>": ToolCallFormat("hermes", "<seed:tool_call>", "</seed:tool_call>"),
    "<|tools_prefix|>": ToolCallFormat("hermes", "<|tools_prefix|>", "<|tools_suffix|>"),
    "functionary": ToolCallFormat("functionary", "<function=", "</function>"),
    "firefunction": ToolCallFormat("firefunction", "functools[", ""),
    "pythonic": ToolCallFormat("pythonic", "<|tool_call_start|>", "<|tool_call_end|>"),
    "solar": ToolCallFormat("solar", "<|tool_call:begin|>", "<|tool_call:end|>"),
    "<minimax:tool_call>": ToolCallFormat("invoke", "<minimax:tool_call>", "</minimax:tool_call>"),
    "<atem:function_calls>": ToolCallFormat("invoke", "<atem:function_calls>", "</atem:function_calls>"),
}
# (what the template writes, its format), first match wins. MiniMax-M3's nested XML is not read.
_SIGNS = (("<|channel|>", "harmony"), ("tool▁calls▁begin", "deepseek"), ("tool_calls_section_begin", "kimi"),
          ("<|START_ACTION|>", "command_r"), ("[TOOL_CALLS]", "mistral"), ("<|tool_call|>", "granite"),
          ("<|tool_call>", "gemma"), ("]<]minimax[>[", "json"), ("<minimax:tool_call>", "<minimax:tool_call>"),
          ("<atem:function_calls>", "<atem:function_calls>"), ("<seed:tool_call>", "<seed:tool_call>"),
          ("<tool_calls>", "<tool_calls>"), ("<TOOLCALL>", "<TOOLCALL>"), ("<|tools_prefix|>", "<|tools_prefix|>"),
          ("<|tool_call_start|>", "pythonic"), ("<|tool_list_start|>", "pythonic"), ("<|tool_call:begin|>", "solar"),
          ("functools[", "firefunction"), ("<tool_call>", "hermes"), ("<function=", "functionary"),
          ("<|python_tag|>", "llama3"))


def _dsml(template_source: str) -> ToolCallFormat:
    """DeepSeek V3.2 / V4: ``<｜DSML｜function_calls>`` or ``<｜DSML｜tool_calls>`` around invokes."""
    block = "function_calls" if "function_calls>" in template_source else "tool_calls"
    return ToolCallFormat("invoke", f"<｜DSML｜{block}>", f"</｜DSML｜{block}>")


def detect_call_format(template_source: str) -> ToolCallFormat:
    """The call format of a chat template (kind 'none' when it never mentions ``tools``: such a
    template cannot offer them, so the engine describes them itself)."""
    if "tools" not in template_source:
        return ToolCallFormat()
    if "<|channel|>" in template_source and "functions." not in template_source:
        return _FORMATS["json"]
    if "｜DSML｜" in template_source:
        return _dsml(template_source)
    for sign, kind in _SIGNS:
        if sign in template_source:
            return _FORMATS[kind]
    if "Action:" in template_source and "tool_name" in template_source:
        return _FORMATS["command_r_plus"]
    if "<|eot_id|>" in template_source and '"parameters"' in template_source:
        return _FORMATS["llama3"]  # Llama 3.2: JSON calls without the python tag
    return _FORMATS["json"]


def format_named(kind: str) -> ToolCallFormat:
    """The format of ``kind`` (one of the module's families)."""
    return _FORMATS[kind]


def required_call_shape(fmt: ToolCallFormat, spec: ToolSpec) -> tuple[str, dict[str, Any], str]:
    """(prefix, JSON schema of the object between, suffix) of one call of ``spec`` in ``fmt``'s own
    markers, for a grammar that makes the output exactly that call; the text reads back with
    :func:`parse_calls` and is found by the scanner. The object is the call (name and arguments)
    or, where the name stands in the markers (DeepSeek, Kimi, Gemma, harmony…), the arguments
    alone. A marked family with a non-JSON body (XML, Python calls) gets the JSON call inside its
    markers, which its reader takes too; 'none' gets the Hermes shape (the engine's fallback)."""
    params, name = spec.parameters or {"type": "object", "properties": {}}, spec.name

    def call(name_key: str = "name", args_key: str = "arguments") -> dict[str, Any]:
        return {"type": "object", "properties": {name_key: {"const": name}, args_key: params},
                "required": [name_key, args_key]}

    action = call("tool_name", "parameters")
    shapes: dict[str, tuple[str, dict[str, Any], str]] = {
        "llama3": ("", call(args_key="parameters"), ""), "json": ("", call(), ""),
        "granite": ("<|tool_call|>[", call(), "]"), "mistral": ("[TOOL_CALLS][", call(), "]"),
        "firefunction": (" functools[", call(), "]"),
        "command_r": ("Action:\n```json\n[", action, "]\n```") if fmt.fenced else
                     ("<|START_ACTION|>[", action, "]<|END_ACTION|>"),
        "deepseek": (f"<｜tool▁calls▁begin｜><｜tool▁call▁begin｜>function<｜tool▁sep｜>{name}\n```json\n", params,
                     "\n```<｜tool▁call▁end｜><｜tool▁calls▁end｜>"),
        "kimi": (f"<|tool_calls_section_begin|><|tool_call_begin|>functions.{name}:0<|tool_call_argument_begin|>",
                 params, "<|tool_call_end|><|tool_calls_section_end|>"),
        "gemma": (f"<|tool_call>call:{name}", params, "<tool_call|>"),
        "harmony": (f"<|channel|>commentary to=functions.{name} <|constrain|>json<|message|>", params, "<|call|>"),
        "functionary": (f"<function={name}>", params, "</function>"),
        "solar": (f"<|tool_call:begin|>call_1<|tool_call:name|>{name}<|tool_call:args|>", params, "<|tool_call:end|>"),
    }
    if fmt.kind in shapes:
        return shapes[fmt.kind]
    if fmt.open and fmt.close:  # hermes and its variants, invoke, pythonic
        return fmt.open + "\n", call(), "\n" + fmt.close
    return "<tool_call>\n", call(), "\n</tool_call>"


# -- reading calls --------------------------------------------------------------------------------
def parse_calls(fmt: ToolCallFormat, text: str) -> list[ToolCall]:
    """The calls in one call section (its markers included), in order; an unreadable call comes
    back with ``error`` set (and its name when it can be seen)."""
    text = text.strip()
    if fmt.kind == "hermes" and fmt.open:
        return _read_hermes(text, fmt.open, fmt.close)
    if fmt.open and fmt.kind in ("invoke", "pythonic") and re.match(r"\[?\s*\{", _between(text, fmt)):
        return _calls_from_json(_between(text, fmt), text)  # a forced call (grammar) writes JSON
    if text.startswith("<tool_call>") and fmt.kind != "hermes":
        return _read_hermes(text)  # a forced call (grammar) uses the Hermes shape in every family
    if fmt.kind in _MARKED_READERS:
        return _MARKED_READERS[fmt.kind](text, fmt)
    return _READERS.get(fmt.kind, _read_json_section)(text)


def _between(text: str, fmt: ToolCallFormat) -> str:
    body = text[len(fmt.open):] if fmt.open and text.startswith(fmt.open) else text
    if fmt.close and body.endswith(fmt.close):
        body = body[: -len(fmt.close)]
    return body.strip()


def _read_json_section(text: str) -> list[ToolCall]:
    return _calls_from_json(_strip_fence(text), text)


def _read_hermes(text: str, opening: str = "<tool_call>", closing: str = "</tool_call>") -> list[ToolCall]:
    calls: list[ToolCall] = []
    pattern = re.escape(opening) + r"(.*?)(?:" + re.escape(closing) + "|$)"
    for body in re.findall(pattern, text, re.DOTALL) or [text]:
        body = _strip_fence(body)
        if body.startswith("<function="):
            calls.append(_xml_call(body, text))
        elif "<arg_key>" in body or (body and not body.startswith(("{", "["))):
            calls.append(_glm_call(body, text))
        else:
            calls += _calls_from_json(body, text)
    return calls


def _xml_call(body: str, raw: str) -> ToolCall:
    """``<function=NAME><parameter=KEY>VALUE</parameter>…</function>`` (Qwen3-Coder, Nemotron)."""
    head = re.match(r"<function=([^>\s]+)>", body)
    if head is None:
        return _error_call("", "the tool call has no function name", raw)
    params = re.findall(r"<parameter=([^>\s]+)>(.*?)</parameter>", body, re.DOTALL)
    return ToolCall(head.group(1), {key: _xml_value(value) for key, value in params}, raw=raw)


def _glm_call(body: str, raw: str) -> ToolCall:
    """``NAME<arg_key>K</arg_key><arg_value>V</arg_value>…`` (GLM 4.5+)."""
    name = body.split("<arg_key>", 1)[0].strip()
    if not re.fullmatch(r"[\w.\-]+", name):
        return _error_call("", "the tool call has no tool name", raw)
    pairs = re.findall(r"<arg_key>(.*?)</arg_key>\s*<arg_value>(.*?)</arg_value>", body, re.DOTALL)
    return ToolCall(name, {key.strip(): _xml_value(value) for key, value in pairs}, raw=raw)


def _read_mistral(text: str) -> list[ToolCall]:
    body = text.replace("[TOOL_CALLS]", "\x00").strip("\x00 \n")
    if body.startswith("["):
        return _calls_from_json(body.replace("\x00", ""), text)
    calls = []
    for part in filter(None, (p.strip() for p in body.split("\x00"))):
        name, sep, arguments = part.partition("[ARGS]")
        name = re.sub(r"\[CALL_ID\].*$", "", name).strip()
        if not sep:
            calls.append(_error_call(name, f"the call of {name or 'a tool'} has no [ARGS]", text))
            continue
        value, problem = _loads(arguments.strip(), name, text)
        calls.append(problem or (ToolCall(name, value, raw=text) if isinstance(value, dict)
                                 else _error_call(name, f"the arguments of {name} are not a JSON object", text)))
    return calls


def _read_llama3(text: str) -> list[ToolCall]:
    body = text.removeprefix("<|python_tag|>").strip()
    builtin = re.fullmatch(r"([\w.]+)\.call\((.*)\)", body, re.DOTALL)
    if builtin:
        return [_python_call(builtin.group(1), builtin.group(2), text)]
    calls = []
    for line in [body] if body.startswith(("[", "{")) and "\n{" not in body else body.split(";"):
        calls += _calls_from_json(_strip_fence(line), text) if line.strip() else []
    return calls


def _read_deepseek(text: str) -> list[ToolCall]:
    calls = []
    for part in re.findall(r"<｜tool▁call▁begin｜>(.*?)(?:<｜tool▁call▁end｜>|$)", text, re.DOTALL):
        head, _sep, arguments = part.partition("<｜tool▁sep｜>")
        if head.strip() == "function":  # R1 / V3: function<sep>NAME\n```json\n{…}\n```
            name, _nl, arguments = arguments.partition("\n")
        else:
            name = head
        name = name.strip()
        value, problem = _loads(_strip_fence(arguments), name, text)
        calls.append(problem or call_from_object({"name": name, "arguments": value}, text))
    return calls


def _read_kimi(text: str) -> list[ToolCall]:
    calls = []
    pattern = (r"<\|tool_call_begin\|>\s*([\w.\-]+?)(?::(\d+))?\s*<\|tool_call_argument_begin\|>"
               r"(.*?)(?:<\|tool_call_end\|>|$)")
    for name, index, arguments in re.findall(pattern, text, re.DOTALL):
        short = name.removeprefix("functions.")
        value, problem = _loads(arguments.strip(), short, text)
        call_id = f"{name}:{index}" if index else ""
        calls.append(problem or call_from_object({"name": short, "arguments": value, "id": call_id}, text))
    return calls


def _read_gemma(text: str) -> list[ToolCall]:
    calls = []
    for body in re.findall(r"<\|tool_call>(.*?)(?:<tool_call\|>|$)", text, re.DOTALL):
        found = re.fullmatch(r"\s*call:([\w.\-]+)\s*(\{.*\})\s*", body, re.DOTALL)
        if found is None:
            calls.append(_error_call("", "the tool call cannot be read", text))
            continue
        name, arguments = found.groups()
        jsonish = re.sub(r'<\|"\|>(.*?)<\|"\|>', lambda m: json.dumps(m.group(1)), arguments, flags=re.DOTALL)
        jsonish = re.sub(r'([{,]\s*)([A-Za-z_][\w\-]*)\s*:', r'\1"\2":', jsonish)
        value, problem = _loads(jsonish, name, text)
        calls.append(problem or call_from_object({"name": name, "arguments": value}, text))
    return calls


def _read_harmony(text: str) -> list[ToolCall]:
    found = re.search(r"to=functions\.([\w.\-]+)", text)
    name = found.group(1) if found else ""
    body = text.split("<|message|>", 1)[1] if "<|message|>" in text else ""
    body = body.split("<|call|>", 1)[0].strip()
    if not name:
        return [_error_call("", "the tool call names no function", text)]
    value, problem = _loads(_strip_fence(body) or "{}", name, text)
    return [problem or call_from_object({"name": name, "arguments": value}, text)]


def _read_command_r(text: str) -> list[ToolCall]:
    body = _strip_fence(text.removeprefix("Action:")) if text.startswith("Action:") \
        else _between(text, _FORMATS["command_r"])
    return [c for c in _calls_from_json(body, text) if c.name not in ("directly-answer", "directly_answer")]


def _read_granite(text: str) -> list[ToolCall]:
    return _calls_from_json(_between(text, _FORMATS["granite"]), text)


_READERS = {"hermes": _read_hermes, "mistral": _read_mistral, "llama3": _read_llama3, "deepseek": _read_deepseek,
            "kimi": _read_kimi, "gemma": _read_gemma, "harmony": _read_harmony, "command_r": _read_command_r,
            "granite": _read_granite, "json": _read_json_section}


def _read_functionary(text: str, _fmt: ToolCallFormat) -> list[ToolCall]:
    """``<function=NAME>{…}</function>`` (Functionary 3.1)."""
    calls = []
    for name, arguments in re.findall(r"<function=([^>\s]+)>(.*?)(?:</function>|$)", text, re.DOTALL):
        value, problem = _loads(arguments.strip() or "{}", name, text)
        calls.append(problem or call_from_object({"name": name, "arguments": value}, text))
    return calls


def _read_firefunction(text: str, fmt: ToolCallFormat) -> list[ToolCall]:
    """`` functools[{"name": …, "arguments": {…}}, …]``."""
    return _calls_from_json(text.removeprefix(fmt.open[:-1]).strip(), text)


def _read_solar(text: str, _fmt: ToolCallFormat) -> list[ToolCall]:
    """``<|tool_call:begin|>ID<|tool_call:name|>NAME<|tool_call:args|>{…}<|tool_call:end|>``."""
    calls = []
    pattern = r"<\|tool_call:begin\|>(.*?)<\|tool_call:name\|>(.*?)<\|tool_call:args\|>(.*?)(?:<\|tool_call:end\|>|$)"
    for call_id, name, arguments in re.findall(pattern, text, re.DOTALL):
        value, problem = _loads(arguments.strip() or "{}", name.strip(), text)
        calls.append(problem or call_from_object({"name": name.strip(), "arguments": value, "id": call_id.strip()},
                                                 text))
    return calls or [_error_call("", "the tool call cannot be read", text)]


def _read_invoke(text: str, fmt: ToolCallFormat) -> list[ToolCall]:
    """``<P:invoke name="NAME"><P:parameter name="KEY" string="true">VALUE</P:parameter></P:invoke>``,
    the tag prefix P taken from the section's opening marker."""
    tag = "<" if fmt.open == "<minimax:tool_call>" else re.sub(r"(function_calls|tool_calls)>$", "", fmt.open)
    prefix = re.escape(tag)
    calls = []
    for name, body in re.findall(prefix + r'invoke name="([^"]+)">(.*?)(?:</' + prefix[1:] + r"invoke>|$)",
                                 text, re.DOTALL):
        params = re.findall(prefix + r'parameter name="([^"]+)"(?: string="(true|false)")?>(.*?)(?:</'
                            + prefix[1:] + r"parameter>|$)", body, re.DOTALL)
        calls.append(ToolCall(name, {key: value if string == "true" else _xml_value(value)
                                     for key, string, value in params}, raw=text))
    return calls or [_error_call("", "the tool call names no tool", text)]


def _read_pythonic(text: str, fmt: ToolCallFormat) -> list[ToolCall]:
    """``[NAME(key="value"), …]`` (LFM2)."""
    body = _between(text, fmt)
    try:
        node = ast.parse(body, mode="eval").body
    except SyntaxError as exc:
        return [_error_call("", f"the tool call cannot be read ({exc.msg})", text)]
    calls = []
    for item in node.elts if isinstance(node, ast.List) else [node]:
        if not isinstance(item, ast.Call):
            calls.append(_error_call("", "the tool call is not a function call", text))
            continue
        name = ast.unparse(item.func)
        calls.append(_python_call(name, ", ".join(ast.unparse(k) for k in item.keywords), text))
    return calls


_MARKED_READERS = {"functionary": _read_functionary, "firefunction": _read_firefunction, "solar": _read_solar,
                   "invoke": _read_invoke, "pythonic": _read_pythonic}
