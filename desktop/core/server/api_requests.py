"""The API's request bodies, checked and turned into plain jobs for the engine.

Only what Cove can honour is accepted; anything it cannot (``n`` > 1, ``logprobs``) is refused
with a 400 naming the field, never silently ignored. Sampling fields map onto
:class:`~desktop.core.system.settings.GenerationSettings`; ``reasoning_effort`` and
``chat_template_kwargs.enable_thinking`` onto the thinking request; ``tools`` and ``tool_choice``
onto the tool request (``required`` through the grammar).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from desktop.core.server.api_errors import bad_request
from desktop.core.system.settings import GenerationSettings
from desktop.core.tools.specs import ANY_TOOL, ToolSpec

MAX_STOP = 8
_NUMBERS = {"temperature": (0.0, 2.0), "top_p": (0.0, 1.0), "min_p": (0.0, 1.0),
            "repeat_penalty": (0.0, 10.0), "frequency_penalty": (-2.0, 2.0), "presence_penalty": (-2.0, 2.0)}


@dataclass
class ApiRequest:
    """One generation request, engine-ready. ``kind``: "chat" or "completion"."""

    kind: str
    model: str
    settings: GenerationSettings
    messages: list[dict[str, Any]] = field(default_factory=list)
    prompt: str = ""
    stop: list[str] = field(default_factory=list)
    stream: bool = False
    include_usage: bool = False
    think: bool | None = None       # None: the model's default
    effort: str = ""
    tools: list[ToolSpec] = field(default_factory=list)
    required_tool: str = ""         # a tool name, ANY_TOOL, or ""
    max_tokens_given: bool = False


def parse_json(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a 400."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise bad_request(f"The request body is not valid JSON: {exc}.") from exc
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object.")
    return data


def _model(data: dict[str, Any]) -> str:
    model = data.get("model")
    if not isinstance(model, str) or not model.strip():
        raise bad_request("'model' is required: one of the ids GET /v1/models lists.", param="model")
    return model.strip()


def _settings(data: dict[str, Any], defaults: GenerationSettings) -> tuple[GenerationSettings, bool]:
    """The sampling fields over ``defaults``; whether max_tokens was given."""
    settings = GenerationSettings.from_dict(defaults.__dict__)
    settings.system_prompt, settings.tools, settings.require_tool = "", [], ""
    for name, (low, high) in _NUMBERS.items():
        if name in data and data[name] is not None:
            value = data[name]
            if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
                raise bad_request(f"'{name}' must be a number from {low} to {high}.", param=name)
            if hasattr(settings, name):
                setattr(settings, name, float(value))
    for name, attr in (("top_k", "top_k"), ("seed", "seed"), ("max_tokens", "max_tokens"),
                       ("max_completion_tokens", "max_tokens")):
        value = data.get(name)
        if value is None:
            continue
        lowest = None if name == "seed" else 0 if name == "top_k" else 1
        if isinstance(value, bool) or not isinstance(value, int) or (lowest is not None and value < lowest):
            raise bad_request(f"'{name}' must be {'an integer' if name == 'seed' else 'a positive integer'}.",
                              param=name)
        setattr(settings, attr, value)
    given = data.get("max_tokens") is not None or data.get("max_completion_tokens") is not None
    return settings, given


def _stop(data: dict[str, Any]) -> list[str]:
    stop = data.get("stop")
    if stop is None:
        return []
    items = [stop] if isinstance(stop, str) else stop
    if not isinstance(items, list) or not all(isinstance(s, str) and s for s in items) or len(items) > MAX_STOP:
        raise bad_request(f"'stop' must be a string or a list of at most {MAX_STOP} non-empty strings.", param="stop")
    return list(items)


def _refuse_unsupported(data: dict[str, Any]) -> None:
    if data.get("n") not in (None, 1):
        raise bad_request("Only 'n': 1 is supported (one answer per request).", param="n")
    if data.get("logprobs") or data.get("top_logprobs"):
        raise bad_request("'logprobs' is not supported.", param="logprobs")


def _content(value: Any, where: str) -> str:
    """A message's content: a string, or the text of a list of content parts."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for part in value:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise bad_request(f"{where}: only text content parts are supported.", param="messages")
            texts.append(part["text"])
        return "".join(texts)
    raise bad_request(f"{where}: 'content' must be a string or a list of text parts.", param="messages")


def _tool_calls(calls: Any, where: str) -> list[dict[str, Any]]:
    """An assistant message's tool calls in the shape templates read (arguments as an object)."""
    if not isinstance(calls, list):
        raise bad_request(f"{where}: 'tool_calls' must be a list.", param="messages")
    shaped = []
    for call in calls:
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise bad_request(f"{where}: each tool call needs a function with a name.", param="messages")
        arguments = function.get("arguments") or {}
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments) if arguments.strip() else {}
            except json.JSONDecodeError:
                arguments = {}
        shaped.append({"id": str(call.get("id") or ""), "type": "function",
                       "function": {"name": function["name"], "arguments": arguments if isinstance(arguments, dict)
                                    else {}}})
    return shaped


def _messages(data: dict[str, Any]) -> list[dict[str, Any]]:
    messages = data.get("messages")
    if not isinstance(messages, list) or not messages:
        raise bad_request("'messages' must be a non-empty list.", param="messages")
    result = []
    for number, message in enumerate(messages):
        where = f"messages[{number}]"
        role = message.get("role") if isinstance(message, dict) else None
        if role == "developer":
            role = "system"
        if role not in ("system", "user", "assistant", "tool"):
            raise bad_request(f"{where}: 'role' must be system, developer, user, assistant or tool.",
                              param="messages")
        entry: dict[str, Any] = {"role": role, "content": _content(message.get("content"), where)}
        if role == "assistant":
            reasoning = message.get("reasoning_content") or message.get("reasoning")
            if isinstance(reasoning, str) and reasoning:
                entry["reasoning_content"] = reasoning
            if message.get("tool_calls"):
                entry["tool_calls"] = _tool_calls(message["tool_calls"], where)
        if role == "tool":
            entry["tool_call_id"] = str(message.get("tool_call_id") or "")
            entry["name"] = str(message.get("name") or "")
        result.append(entry)
    return result


def _tools(data: dict[str, Any]) -> tuple[list[ToolSpec], str]:
    """The offered tools and the one required ('' none, ANY_TOOL any)."""
    tools, choice = data.get("tools") or [], data.get("tool_choice")
    if not isinstance(tools, list):
        raise bad_request("'tools' must be a list.", param="tools")
    specs = []
    for number, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) and tool.get("type") == "function" else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not function["name"]:
            raise bad_request(f"tools[{number}] must be {{'type': 'function', 'function': {{'name': ...}}}}.",
                              param="tools")
        parameters = function.get("parameters") or {"type": "object", "properties": {}}
        specs.append(ToolSpec(function["name"], str(function.get("description") or ""), parameters))
    if choice in (None, "auto"):
        return specs, ""
    if choice == "none":
        return [], ""
    if choice == "required":
        if not specs:
            raise bad_request("tool_choice 'required' needs 'tools'.", param="tool_choice")
        return specs, specs[0].name if len(specs) == 1 else ANY_TOOL
    name = choice.get("function", {}).get("name") if isinstance(choice, dict) else None
    if not isinstance(name, str) or name not in {s.name for s in specs}:
        raise bad_request("'tool_choice' must be 'none', 'auto', 'required' or name one of 'tools'.",
                          param="tool_choice")
    return specs, name


def _thinking(data: dict[str, Any]) -> tuple[bool | None, str]:
    effort = data.get("reasoning_effort") or ""
    if effort and effort not in ("minimal", "low", "medium", "high"):
        raise bad_request("'reasoning_effort' must be low, medium or high.", param="reasoning_effort")
    kwargs = data.get("chat_template_kwargs") or {}
    if not isinstance(kwargs, dict):
        raise bad_request("'chat_template_kwargs' must be an object.", param="chat_template_kwargs")
    think = kwargs.get("enable_thinking", kwargs.get("thinking"))
    if effort == "minimal":
        think, effort = False, ""
    return (bool(think) if isinstance(think, bool) else None), effort


def _stream(data: dict[str, Any]) -> tuple[bool, bool]:
    stream = data.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be true or false.", param="stream")
    options = data.get("stream_options") or {}
    return stream, bool(isinstance(options, dict) and options.get("include_usage"))


def chat_request(data: dict[str, Any], defaults: GenerationSettings) -> ApiRequest:
    """A ``POST /v1/chat/completions`` body as an engine request (or a 400 naming the field)."""
    _refuse_unsupported(data)
    settings, given = _settings(data, defaults)
    stream, usage = _stream(data)
    think, effort = _thinking(data)
    tools, required = _tools(data)
    return ApiRequest("chat", _model(data), settings, messages=_messages(data), stop=_stop(data), stream=stream,
                      include_usage=usage, think=think, effort=effort, tools=tools, required_tool=required,
                      max_tokens_given=given)


def completion_request(data: dict[str, Any], defaults: GenerationSettings) -> ApiRequest:
    """A ``POST /v1/completions`` body (one prompt string) as an engine request."""
    _refuse_unsupported(data)
    prompt = data.get("prompt")
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str):
        prompt = prompt[0]
    if not isinstance(prompt, str) or not prompt:
        raise bad_request("'prompt' must be a non-empty string.", param="prompt")
    if data.get("echo") or data.get("suffix"):
        raise bad_request("'echo' and 'suffix' are not supported.", param="echo")
    settings, given = _settings(data, defaults)
    if not given:
        settings.max_tokens = 16  # OpenAI's default for completions
    stream, usage = _stream(data)
    return ApiRequest("completion", _model(data), settings, prompt=prompt, stop=_stop(data), stream=stream,
                      include_usage=usage, max_tokens_given=True)


def embedding_inputs(data: dict[str, Any]) -> tuple[str, list[str]]:
    """A ``POST /v1/embeddings`` body: the model and the texts."""
    model, texts = _model(data), data.get("input")
    texts = [texts] if isinstance(texts, str) else texts
    if not isinstance(texts, list) or not texts or not all(isinstance(t, str) for t in texts):
        raise bad_request("'input' must be a string or a list of strings.", param="input")
    if data.get("encoding_format") not in (None, "float"):
        raise bad_request("Only encoding_format 'float' is supported.", param="encoding_format")
    return model, texts
