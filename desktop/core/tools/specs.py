"""What a tool is, what a model asked of it, and what came back (plain data, shared by the
parser, the MCP client, the store and the window)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from desktop.core.text.pieces import TOOL_CALL  # the piece kind of a whole call in the streamed output

__all__ = ["DENIED", "ERROR", "OK", "TOOL_CALL", "ToolCall", "ToolResult", "ToolSpec"]

# ToolResult.status values.
OK, ERROR, DENIED = "ok", "error", "denied"


ANY_TOOL = "*"  # a required tool that may be any of the offered ones (the API's tool_choice "required")

@dataclass(frozen=True)
class ToolSpec:
    """One tool a model may call: ``parameters`` is its JSON schema; ``server`` the MCP server
    (its name in mcp.json) that runs it."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    server: str = ""

    def for_template(self) -> dict[str, Any]:
        """The OpenAI-style entry chat templates read from their ``tools`` variable."""
        return {"type": "function", "function": {"name": self.name, "description": self.description,
                                                 "parameters": self.parameters or {"type": "object",
                                                                                   "properties": {}}}}


@dataclass(frozen=True)
class ToolCall:
    """A call the model wrote. ``error`` says why it cannot be run (JSON that does not parse, no
    name); ``raw`` is the call's text as the model wrote it."""

    name: str
    arguments: dict[str, Any] = field(default_factory=dict)
    id: str = ""
    error: str = ""
    raw: str = ""

    def arguments_json(self) -> str:
        """The arguments as compact JSON text."""
        return json.dumps(self.arguments, ensure_ascii=False)

    def to_dict(self) -> dict[str, Any]:
        """Plain data (store, exports, the CLI's JSON)."""
        data: dict[str, Any] = {"id": self.id, "name": self.name, "arguments": self.arguments}
        if self.error:
            data["error"], data["raw"] = self.error, self.raw
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ToolCall:
        """Inverse of :meth:`to_dict` (unknown keys ignored, bad types made empty)."""
        arguments = data.get("arguments")
        return cls(str(data.get("name") or ""), arguments if isinstance(arguments, dict) else {},
                   str(data.get("id") or ""), str(data.get("error") or ""), str(data.get("raw") or ""))


@dataclass(frozen=True)
class ToolResult:
    """What a call gave back: ``content`` as text for the model; ``status`` ok, error or denied."""

    call_id: str
    name: str
    content: str
    status: str = OK
    duration_s: float = 0.0
    server: str = ""
    arguments: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data, stored with the tool message (its ``content`` apart)."""
        return {"call_id": self.call_id, "name": self.name, "status": self.status,
                "duration_s": round(self.duration_s, 4), "server": self.server, "arguments": self.arguments}

    @classmethod
    def from_dict(cls, data: dict[str, Any], content: str) -> ToolResult:
        """Inverse of :meth:`to_dict`."""
        arguments = data.get("arguments")
        return cls(str(data.get("call_id") or ""), str(data.get("name") or ""), content,
                   str(data.get("status") or OK), float(data.get("duration_s") or 0.0),
                   str(data.get("server") or ""), arguments if isinstance(arguments, dict) else {})


def _block_text(block: Any) -> str:
    """One MCP content block (text, image, audio, resource, resource link) as text for the model."""
    kind = getattr(block, "type", "")
    if kind == "text":
        return str(block.text)
    if kind in ("image", "audio"):
        return f"[{kind}: {block.mime_type}, about {len(block.data) * 3 // 4} bytes, not shown to the model]"
    if kind == "resource_link":
        return f"[resource: {block.name} at {block.uri}]"
    if kind == "resource":
        res = block.resource
        return res.text if isinstance(getattr(res, "text", None), str) else f"[resource: {res.uri}, {res.mime_type}]"
    return f"[{kind or 'unknown'} content]"


def content_text(content: list[Any], structured: Any = None) -> str:
    """A tool's MCP result as the text a model reads: text parts joined, other parts summarised, the
    structured content as JSON when nothing else came."""
    parts = [_block_text(block) for block in content]
    if not any(part.strip() for part in parts) and structured is not None:
        parts = [json.dumps(structured, ensure_ascii=False)]
    return "\n".join(parts) if parts else "(the tool returned nothing)"
