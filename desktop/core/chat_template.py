"""Chat templates rendered safely: Jinja's sandbox plus limits on time and size.

A GGUF's ``tokenizer.chat_template`` is code written by whoever made the file. Jinja's immutable
sandbox (jinja2 >= 3.1.6, as llama-cpp-python uses) stops it from reaching Python internals; this
module also stops it from running for minutes or building gigabyte strings:

* a deadline, checked on every call and operator the template makes, on every piece of output,
  and by a line tracer on the template's own compiled code (so a loop without calls stops too);
* size checks before ``*``, ``**`` and ``+`` are evaluated, and a cap on the rendered prompt;
* no ``lipsum`` (a generator of arbitrary amounts of text) among the globals.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jinja2
import jinja2.ext
from jinja2.sandbox import ImmutableSandboxedEnvironment

RENDER_SECONDS = 2.0
MAX_PROMPT_CHARS = 8_000_000
MAX_VALUE_CHARS = 1_000_000  # strings or lists a template may build with * or +
MAX_INT_BITS = 4096

# Used when a model has no chat template, or its template cannot be used.
CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class TemplateError(ValueError):
    """The chat template failed, ran too long or grew too large; the message says which."""


class TemplateRefusal(TemplateError):
    """The template itself rejected the conversation (``raise_exception``), e.g. a system role."""


class _IgnoreGenerationTags(jinja2.ext.Extension):
    """Pass-through for Hugging Face's ``{% generation %}`` tag."""

    tags = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> Any:
        parser.stream.skip(1)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


def _tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


def _size(value: Any) -> int:
    return len(value) if isinstance(value, (str, bytes, list, tuple)) else 0


class GuardedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with a deadline and size limits on what a template computes."""

    intercepted_binops = frozenset({"*", "**", "+"})

    def __init__(self) -> None:
        super().__init__(loader=jinja2.BaseLoader(), trim_blocks=True, lstrip_blocks=True,
                         extensions=[_IgnoreGenerationTags, jinja2.ext.loopcontrols])
        self.globals.pop("lipsum", None)
        self.filters["tojson"] = _tojson
        self.deadline = float("inf")

    def check_time(self) -> None:
        """Raise once the render has used up its time."""
        if time.monotonic() > self.deadline:
            raise TemplateError(f"the chat template ran longer than {RENDER_SECONDS:.0f} s and was stopped")

    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        self.check_time()
        if operator == "**":
            if isinstance(right, int) and abs(right) > 64 or isinstance(left, int) and left.bit_length() > 64:
                raise TemplateError("the chat template tried to compute a huge power")
        elif operator == "*":
            count, seq = (right, left) if isinstance(right, int) else (left, right)
            if isinstance(count, int) and _size(seq) * max(count, 0) > MAX_VALUE_CHARS:
                raise TemplateError("the chat template tried to build a huge string")
            if isinstance(left, int) and isinstance(right, int) and left.bit_length() + right.bit_length() > MAX_INT_BITS:
                raise TemplateError("the chat template tried to compute a huge number")
        elif operator == "+" and _size(left) + _size(right) > MAX_VALUE_CHARS:
            raise TemplateError("the chat template tried to build a huge string")
        return super().call_binop(context, operator, left, right)

    def call(__self, __context: jinja2.runtime.Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:  # noqa: N805
        __self.check_time()
        return super().call(__context, __obj, *args, **kwargs)

    def getattr(self, obj: Any, attribute: str) -> Any:
        self.check_time()
        return super().getattr(obj, attribute)


@dataclass(frozen=True)
class RenderedPrompt:
    """The prompt text and the strings that end an answer."""

    prompt: str
    stop: list[str]


class ChatTemplate:
    """A compiled chat template with the model's special tokens."""

    def __init__(self, source: str, eos_token: str = "", bos_token: str = "") -> None:
        self.source = source
        self.eos_token = eos_token
        self.bos_token = bos_token
        self._env = GuardedEnvironment()
        try:
            self._template = self._env.from_string(source)
        except jinja2.TemplateError as exc:
            raise TemplateError(f"the chat template is not valid Jinja: {exc}") from exc

    def render(self, messages: Sequence[dict[str, str]], *, add_generation_prompt: bool = True,
               seconds: float = RENDER_SECONDS, max_chars: int = MAX_PROMPT_CHARS) -> RenderedPrompt:
        """Render ``messages``; raises :class:`TemplateError` on failure, overrun or overgrowth."""
        def raise_exception(message: str) -> None:
            raise TemplateRefusal(f"the chat template refused the conversation: {message}")

        env = self._env
        env.deadline = time.monotonic() + seconds
        parts: list[str] = []
        total = 0
        previous = sys.gettrace()
        sys.settrace(_tracer(env))
        try:
            for piece in self._template.generate(
                messages=list(messages), eos_token=self.eos_token, bos_token=self.bos_token,
                add_generation_prompt=add_generation_prompt, raise_exception=raise_exception,
                strftime_now=lambda fmt: datetime.now().strftime(fmt),
            ):
                total += len(piece)
                if total > max_chars:
                    raise TemplateError(f"the chat template produced more than {max_chars:,} characters")
                env.check_time()
                parts.append(piece)
        except TemplateError:
            raise
        except RecursionError as exc:
            raise TemplateError("the chat template recursed without end") from exc
        except MemoryError as exc:
            raise TemplateError("the chat template ran out of memory") from exc
        except Exception as exc:  # a template is someone else's code: any failure is the template's
            raise TemplateError(f"the chat template failed: {type(exc).__name__}: {exc}") from exc
        finally:
            sys.settrace(previous)
            env.deadline = float("inf")
        return RenderedPrompt("".join(parts), [self.eos_token] if self.eos_token else [])


def _tracer(env: GuardedEnvironment) -> Any:
    """A trace function that checks the deadline every few hundred lines of template code."""
    counter = [0]

    def local(frame: Any, event: str, arg: Any) -> Any:
        if event == "line":
            counter[0] += 1
            if counter[0] % 256 == 0:
                env.check_time()
        return local

    def global_trace(frame: Any, event: str, arg: Any) -> Any:
        return local if frame.f_code.co_filename == "<template>" else None

    return global_trace


def merge_system_into_first_user(messages: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """For templates without a system role: the system text goes before the first question."""
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    rest = [dict(m) for m in messages if m["role"] != "system"]
    for message in rest:
        if message["role"] == "user":
            message["content"] = f"{system}\n\n{message['content']}" if system else message["content"]
            break
    return rest
