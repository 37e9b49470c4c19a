"""Chat templates rendered safely: Jinja's sandbox plus limits on time and size.

A GGUF's ``tokenizer.chat_template`` is code written by whoever made the file. Jinja's immutable
sandbox (jinja2 >= 3.1.6, as llama-cpp-python uses) stops it from reaching Python internals; this
module also stops it from running for minutes or building gigabyte strings:

* a deadline, checked on every call, operator, filter and attribute the template uses, on every
  piece of output, and by a line tracer on all Python code the render runs (so a loop without
  calls, or a slow filter, stops too);
* a size check on every value the template builds: operators, ``~``, list and dict literals,
  filters, method calls and the buffers of macros and ``{% set %}`` blocks. Operations that can
  multiply sizes in one step (``*``, ``join``, ``replace``, ``center``, ``%`` and ``str.format``
  widths, ``indent``, ``tojson(indent=...)`` ...) are checked *before* they run, so no single
  step can allocate gigabytes; a budget bounds what a render may allocate in all; ``sum`` adds
  numbers only (adding lists is quadratic, in C, where no deadline reaches);
* no compile-time evaluation of template code: Jinja folds constant expressions while compiling,
  outside any deadline (``{{ 'a'|center(10**9) }}`` would run then), so every arithmetic
  operator is routed through :meth:`GuardedEnvironment.call_binop` and filters refuse to run
  outside a render;
* no ``lipsum`` (a generator of arbitrary amounts of text) among the globals, and templates
  longer than MAX_TEMPLATE_CHARS are refused before compiling.

Every refusal raises :class:`TemplateError` with a message that says what the template did.
"""

from __future__ import annotations

import inspect
import json
import re
import string
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from types import GeneratorType
from typing import Any

import jinja2
import jinja2.ext
from jinja2.compiler import CodeGenerator, Frame
from jinja2.nodes import Concat, Dict, Getitem, List, Slice, Tuple
from jinja2.sandbox import MAX_RANGE, ImmutableSandboxedEnvironment
from jinja2.utils import Cycler, Namespace

from desktop.core.text.units import format_size

RENDER_SECONDS = 2.0
MAX_PROMPT_CHARS = 8_000_000
MAX_VALUE_CHARS = MAX_PROMPT_CHARS  # no value a template builds may be larger than a prompt may be
MAX_INT_BITS = 4096
MAX_RENDER_BYTES = 128 * 1024 * 1024  # memory one render may allocate, all values together
MAX_TEMPLATE_CHARS = 128_000  # published chat templates have up to a few ten thousand characters
MAX_DEPTH = 64  # nesting of lists and dicts a template may build
MAX_STRFTIME_CHARS = 256

# Used when a model has no chat template, or its template cannot be used.
CHATML_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}"
    "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


class TemplateError(ValueError):
    """The chat template failed, ran too long or grew too large; the message says which."""


class TemplateRefusal(TemplateError):
    """The template itself rejected the conversation (``raise_exception``), e.g. a system role."""


class _Stop(BaseException):
    """Ends a render from inside it; :meth:`ChatTemplate.render` turns it into TemplateError.

    A ``BaseException`` so that no ``except Exception`` (or ``except ValueError``) in Jinja or a
    filter can swallow it and let the template run on.
    """


class _NotRendering(Exception):
    """A filter was asked to run outside a render (by Jinja's compile-time constant folding,
    which then leaves the expression to the render, where the guards apply)."""


class _IgnoreGenerationTags(jinja2.ext.Extension):
    """Pass-through for Hugging Face's ``{% generation %}`` tag."""

    tags = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> Any:
        parser.stream.skip(1)
        return parser.parse_statements(("name:endgeneration",), drop_needle=True)


def _tojson(x: Any, ensure_ascii: bool = False, indent: int | str | None = None,
            separators: tuple[str, str] | None = None, sort_keys: bool = False) -> str:
    return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)


# -- sizes ------------------------------------------------------------------------------------------

def _measure(value: Any, limit: int, env: GuardedEnvironment | None = None, indent: int = 0) -> int:
    """About how many characters ``str(value)`` (or JSON with ``indent``) would have, without
    building it. Shared sub-values are measured once; stops counting once past ``limit``."""
    if isinstance(value, (str, bytes, bytearray)):
        return len(value)
    if isinstance(value, int):
        return value.bit_length() // 3 + 1
    memo: dict[int, int] = {}
    active: set[int] = set()
    steps = [0]

    def visit(v: Any, depth: int) -> int:
        if isinstance(v, (str, bytes, bytearray)):
            return len(v) + 3
        if v is None or isinstance(v, (bool, float, complex)):
            return 24
        if isinstance(v, int):
            return v.bit_length() // 3 + 2
        key = id(v)
        if key in memo:
            return memo[key]
        if key in active:  # a cycle: str() prints it as [...]
            return 5
        if isinstance(v, Mapping):
            items: Any = [x for pair in v.items() for x in pair]
        elif isinstance(v, (list, tuple, set, frozenset)):
            items = v
        elif isinstance(v, Namespace):
            items = list(object.__getattribute__(v, "_Namespace__attrs").values())
        elif isinstance(v, Cycler):
            items = v.items
        else:
            return 64
        if depth >= MAX_DEPTH:
            raise _Stop(f"the chat template built values nested more than {MAX_DEPTH} levels deep")
        active.add(key)
        total = 2
        pad = indent * (depth + 1) + 1 if indent else 0
        for item in items:
            kind = type(item)  # the common cases inline: this loop may see millions of items
            if kind is str:
                total += len(item) + 5 + pad
            elif kind is int:
                total += item.bit_length() // 3 + 4 + pad
            else:
                total += visit(item, depth + 1) + 2 + pad
            steps[0] += 1
            if total > limit:
                break
            if env is not None and steps[0] % 65536 == 0:
                env.check_time()
        active.discard(key)
        memo[key] = total
        return total

    return visit(value, 0)


def _footprint(value: Any) -> int:
    """Bytes a newly built value occupies: its own storage and that of containers directly in it."""
    if isinstance(value, (str, bytes, bytearray)):
        return sys.getsizeof(value)
    if isinstance(value, (list, tuple, dict, set, frozenset)):
        size = sys.getsizeof(value)
        for item in (value.values() if isinstance(value, dict) else value):
            if isinstance(item, (list, tuple, dict, set, frozenset)):
                size += sys.getsizeof(item)
        return size
    return 0


_PERCENT_SPEC = re.compile(r"%(?:\(([^)]*)\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d*))?[hlL]?(.)", re.S)
_DIGITS = re.compile(r"\d+")


def _number(text: str) -> int:
    return int(text) if len(text) <= 9 else 10**10


def _predict_percent(fmt: str | bytes, values: Any, measure: Callable[[Any], int]) -> int:
    """Upper bound of ``len(fmt % values)``: widths, precisions and the values each spec takes."""
    if isinstance(fmt, bytes):
        fmt = fmt.decode("latin-1")
    positional = list(values) if isinstance(values, tuple) else [values]
    mapping = values if isinstance(values, Mapping) else None
    total, index = len(fmt), 0
    for match in _PERCENT_SPEC.finditer(fmt):
        key, width, precision, kind = match.groups()
        pad = 0
        for part in (width, precision):
            if part == "*":
                arg = positional[index] if index < len(positional) else 0
                index += 1
                pad = max(pad, abs(arg) if isinstance(arg, int) else 0)
            elif part:
                pad = max(pad, _number(part))
        if kind == "%":
            continue
        if key is not None:
            arg = mapping.get(key) if mapping is not None else None
        else:
            arg = positional[index] if index < len(positional) else None
            index += 1
        size = measure(arg)
        total += pad + (4 * size + 2 if kind in "ra" else size) + 1
    return total


def _predict_brace(fmt: str, values: list[Any], measure: Callable[[Any], int]) -> int:
    """Upper bound of ``len(fmt.format(*values))``: every field may print the largest value,
    padded to the largest width written in (or passed to) its format spec."""
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError:
        return len(fmt)  # str.format will raise the same error
    largest = max((measure(v) for v in values), default=0)
    widest_arg = max((abs(v) for v in values if isinstance(v, int) and not isinstance(v, bool)), default=0)
    total = len(fmt)
    for _literal, field, spec, conversion in fields:
        if field is None:
            continue
        pad = max((_number(d) for d in _DIGITS.findall(spec or "")), default=0)
        if spec and "{" in spec:
            pad = max(pad, widest_arg)
        total += pad + (4 * largest + 2 if conversion in ("r", "a") else largest)
    return total


def _bind(signature: inspect.Signature | None, args: tuple, kwargs: dict) -> inspect.BoundArguments | None:
    if signature is None:
        return None
    try:
        bound = signature.bind(*args, **kwargs)
    except TypeError:
        return None  # the filter itself will raise the same error
    bound.apply_defaults()
    return bound


# -- code generation ---------------------------------------------------------------------------------

class _GuardedCodeGenerator(CodeGenerator):
    """Jinja's code generator, with ``~`` and list, tuple and dict literals routed through the
    environment's size checks (a loop that does ``ns.x = [ns.x, ns.x]`` or ``ns.s = ns.s ~ ns.s``
    would otherwise double a value in each pass without any call or operator Cove sees)."""

    def visit_Concat(self, node: Concat, frame: Frame) -> None:
        if frame.eval_ctx.volatile:
            func_name = "(markup_join if context.eval_ctx.volatile else str_join)"
        elif frame.eval_ctx.autoescape:
            func_name = "markup_join"
        else:
            func_name = "str_join"
        self.write(f"environment.checked_join({func_name}, (")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")

    def _checked(self, visit: Callable[[Any, Frame], None], node: Any, frame: Frame) -> None:
        self.write("environment.checked_value(")
        visit(node, frame)
        self.write(")")

    def visit_List(self, node: List, frame: Frame) -> None:
        self._checked(super().visit_List, node, frame)

    def visit_Dict(self, node: Dict, frame: Frame) -> None:
        self._checked(super().visit_Dict, node, frame)

    def visit_Getitem(self, node: Getitem, frame: Frame) -> None:
        if isinstance(node.arg, Slice):  # Jinja slices directly, not through environment.getitem
            self._checked(super().visit_Getitem, node, frame)
        else:
            super().visit_Getitem(node, frame)

    def visit_Tuple(self, node: Tuple, frame: Frame) -> None:
        if node.ctx == "load":
            self._checked(super().visit_Tuple, node, frame)
        else:
            super().visit_Tuple(node, frame)


# -- the environment ------------------------------------------------------------------------------

_STR_TYPES = (str, bytes)


class GuardedEnvironment(ImmutableSandboxedEnvironment):
    """The immutable sandbox, with a deadline and size limits on what a template computes."""

    # All arithmetic is intercepted: besides the checks, this keeps Jinja from evaluating
    # constant expressions at compile time, where no deadline or size check applies.
    intercepted_binops = frozenset({"+", "-", "*", "/", "//", "%", "**"})
    code_generator_class = _GuardedCodeGenerator

    def __init__(self) -> None:
        super().__init__(loader=jinja2.BaseLoader(), trim_blocks=True, lstrip_blocks=True,
                         extensions=[_IgnoreGenerationTags, jinja2.ext.loopcontrols])
        self.globals.pop("lipsum", None)
        self.filters["tojson"] = _tojson
        self.filters = {name: self._guard_filter(name, func) for name, func in self.filters.items()}
        self.deadline = float("inf")
        self.seconds = RENDER_SECONDS
        self.allocated = 0

    # -- limits -------------------------------------------------------------------------------
    @property
    def rendering(self) -> bool:
        """True during :meth:`ChatTemplate.render` (the deadline is set)."""
        return self.deadline != float("inf")

    def start(self, seconds: float) -> None:
        """Arm the deadline and the allocation budget for one render."""
        self.seconds = seconds
        self.allocated = 0
        self.deadline = time.monotonic() + seconds

    def stop(self) -> None:
        """Disarm after a render."""
        self.deadline = float("inf")

    def check_time(self) -> None:
        """End the render once it has used up its time."""
        if time.monotonic() > self.deadline:
            raise _Stop(f"the chat template ran longer than {self.seconds:g} s and was stopped")

    def measure(self, value: Any, indent: int = 0) -> int:
        """About how long ``str(value)`` would be (see :func:`_measure`)."""
        return _measure(value, MAX_VALUE_CHARS, self, indent)

    def measure_all(self, items: Any) -> int:
        """The sizes of ``items`` added up (as ``"".join(map(str, items))`` would need)."""
        total = 0
        for item in items:
            kind = type(item)
            if kind is str:
                total += len(item)
            elif kind is int:
                total += item.bit_length() // 3 + 1
            else:
                total += self.measure(item)
            if total > MAX_VALUE_CHARS:
                break
        return total

    def refuse_if_huge(self, size: int, what: str = "a huge string") -> None:
        """End the render if an operation is about to build more than MAX_VALUE_CHARS."""
        if size > MAX_VALUE_CHARS:
            raise _Stop(f"the chat template tried to build {what} (over {MAX_VALUE_CHARS:,} characters)")

    def checked_value(self, value: Any) -> Any:
        """Admit a value the template built: not too large, and within the render's budget."""
        self.check_time()
        if not isinstance(value, (str, bytes, bytearray, int, float, bool, type(None))):
            self.refuse_if_huge(self.measure(value), "a huge value")
        elif isinstance(value, (str, bytes, bytearray)):
            self.refuse_if_huge(len(value))
        self.allocated += _footprint(value)
        if self.allocated > MAX_RENDER_BYTES:
            raise _Stop(f"the chat template used more than {format_size(MAX_RENDER_BYTES)} of memory "
                        "and was stopped")
        return value

    def checked_items(self, items: Iterator[Any]) -> Iterator[Any]:
        """The items a filter generates, each admitted like a value the template built (a
        consumer such as ``|list`` would otherwise gather millions of new lists unchecked)."""
        for item in items:
            yield self.checked_value(item)

    def checked_join(self, join: Callable[[Any], str], parts: tuple) -> str:
        """``a ~ b ~ c``: measured before it is joined."""
        self.check_time()
        self.refuse_if_huge(self.measure_all(parts))
        return self.checked_value(join(parts))

    def concat(self, pieces: Any) -> str:  # type: ignore[override]
        """Joins the output buffers of macros, call blocks, ``{% set %}`` and ``{% filter %}``
        blocks (Jinja's own is a plain ``"".join``)."""
        kept: list[str] = []
        total = 0
        for piece in pieces:
            total += len(piece)
            if total > MAX_VALUE_CHARS:
                self.refuse_if_huge(total, "a huge block of text")
            kept.append(piece)
            if len(kept) % 4096 == 0:
                self.check_time()
        return self.checked_value("".join(kept))

    # -- what the template does ---------------------------------------------------------------
    def call_binop(self, context: jinja2.runtime.Context, operator: str, left: Any, right: Any) -> Any:
        self.check_time()
        if operator == "**":
            if isinstance(right, int) and abs(right) > 64 or isinstance(left, int) and left.bit_length() > 64:
                raise _Stop("the chat template tried to compute a huge power")
        elif operator == "*":
            if isinstance(left, int) and isinstance(right, int):
                if left.bit_length() + right.bit_length() > MAX_INT_BITS:
                    raise _Stop("the chat template tried to compute a huge number")
            else:
                count, seq = (right, left) if isinstance(right, int) else (left, right)
                if isinstance(count, int) and isinstance(seq, (str, bytes, list, tuple)) and count > 0:
                    self.refuse_if_huge(self.measure(seq) * count)
        elif operator == "+":
            if isinstance(left, (str, bytes, list, tuple)) and isinstance(right, (str, bytes, list, tuple)):
                self.refuse_if_huge(self.measure(left) + self.measure(right))
        elif operator == "%" and isinstance(left, _STR_TYPES):
            self.refuse_if_huge(_predict_percent(left, right, self.measure))
        try:
            result = super().call_binop(context, operator, left, right)
        except OverflowError as exc:
            raise _Stop(f"the chat template computed a number too large: {exc}") from None
        return self.checked_value(result)

    def call(self, context: jinja2.runtime.Context, obj: Any, /,  # type: ignore[override]
             *args: Any, **kwargs: Any) -> Any:
        self.check_time()
        args = self._before_method(obj, args, kwargs)
        return self.checked_value(super().call(context, obj, *args, **kwargs))

    def getattr(self, obj: Any, attribute: str) -> Any:
        self.check_time()
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        self.check_time()
        return super().getitem(obj, argument)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        """``str.format`` / ``format_map``: Jinja's sandboxed formatter, measured first."""
        inner = super().wrap_str_format(value)
        if inner is None:
            return None
        fmt, is_map = value.__self__, value.__name__ == "format_map"

        def guarded(*args: Any, **kwargs: Any) -> str:
            self.check_time()
            if is_map and args and isinstance(args[0], Mapping):
                values = list(args[0].values())
            else:
                values = [*args, *kwargs.values()]
            self.refuse_if_huge(_predict_brace(fmt, values, self.measure))
            return self.checked_value(inner(*args, **kwargs))

        return guarded

    def _before_method(self, obj: Any, args: tuple, kwargs: dict) -> tuple:
        """Size checks for the methods that can multiply a string's size in one call."""
        owner = getattr(obj, "__self__", None)
        name = getattr(obj, "__name__", "")
        if isinstance(owner, _STR_TYPES):
            n = len(owner)
            if name in ("center", "ljust", "rjust", "zfill"):
                width = args[0] if args else kwargs.get("width", 0)
                if isinstance(width, int):
                    self.refuse_if_huge(width)
            elif name == "expandtabs":
                tab = args[0] if args else kwargs.get("tabsize", 8)
                if isinstance(tab, int):
                    self.refuse_if_huge(n + owner.count("\t" if isinstance(owner, str) else b"\t") * max(tab, 0))
            elif name == "replace" and len(args) >= 2 and isinstance(args[0], _STR_TYPES) \
                    and isinstance(args[1], _STR_TYPES):
                old, new = args[0], args[1]
                count = args[2] if len(args) > 2 else kwargs.get("count", -1)
                try:
                    hits = owner.count(old) if old else n + 1
                except TypeError:
                    return args
                if isinstance(count, int) and count >= 0:
                    hits = min(hits, count)
                self.refuse_if_huge(n + hits * max(len(new) - len(old), 0))
            elif name == "join" and args:
                items = list(args[0])
                self.refuse_if_huge(self.measure_all(items) + n * max(len(items) - 1, 0))
                return (items, *args[1:])
            elif name == "translate" and args and isinstance(args[0], (Mapping, list, tuple)):
                table = args[0]
                values = table.values() if isinstance(table, Mapping) else table
                longest = max((len(v) for v in values if isinstance(v, _STR_TYPES)), default=1)
                self.refuse_if_huge(n * max(longest, 1))
        elif isinstance(owner, int) and name == "to_bytes":
            length = args[0] if args else kwargs.get("length", 1)
            if isinstance(length, int):
                self.refuse_if_huge(length)
        return args

    # -- filters ------------------------------------------------------------------------------
    def _guard_filter(self, name: str, func: Callable[..., Any]) -> Callable[..., Any]:
        """Wrap a filter: it runs only during a render, with time and size checks around it."""
        try:
            signature: inspect.Signature | None = inspect.signature(func)
        except (TypeError, ValueError):
            signature = None
        env = self

        def guarded(*args: Any, **kwargs: Any) -> Any:
            if not env.rendering:
                raise _NotRendering(name)
            env.check_time()
            bound = _bind(signature, args, kwargs)
            if bound is not None:
                replaced = env._before_filter(name, bound.arguments)
                if replaced:
                    bound.arguments.update(replaced)
                    args, kwargs = bound.args, bound.kwargs
            result = func(*args, **kwargs)
            if isinstance(result, GeneratorType):  # map, select, batch, slice ...: admit each item
                return env.checked_items(result)
            return env.checked_value(result)

        guarded.__name__ = getattr(func, "__name__", name)
        guarded.__doc__ = func.__doc__
        guarded.__dict__.update(getattr(func, "__dict__", {}))  # keeps Jinja's pass_context & co.
        return guarded

    def _before_filter(self, name: str, a: Mapping[str, Any]) -> dict[str, Any] | None:
        """Size checks for filters that can multiply sizes; may return replaced arguments."""
        measure = self.measure
        if name == "center":
            if isinstance(a.get("width"), int):
                self.refuse_if_huge(a["width"])
        elif name == "indent":
            width = a.get("width")
            size = width if isinstance(width, int) else measure(width)
            lines = len(str(a.get("s", "")).splitlines()) + 1
            self.refuse_if_huge(measure(a.get("s")) + lines * max(size, 0))
        elif name == "join":
            items = list(a.get("value") or ())
            self.refuse_if_huge(self.measure_all(items) + measure(a.get("d")) * max(len(items) - 1, 0))
            return {"value": items}
        elif name == "replace":
            s, old, new = str(a.get("s", "")), str(a.get("old", "")), str(a.get("new", ""))
            hits = s.count(old) if old else len(s) + 1
            count = a.get("count")
            if isinstance(count, int) and count >= 0:
                hits = min(hits, count)
            self.refuse_if_huge(len(s) + hits * max(len(new) - len(old), 0))
        elif name == "format":
            values = a.get("kwargs") or tuple(a.get("args") or ())
            self.refuse_if_huge(_predict_percent(str(a.get("value", "")), values, measure))
        elif name == "wordwrap":
            s, width = str(a.get("s", "")), a.get("width")
            wrap = a.get("wrapstring") or self.newline_sequence
            if isinstance(width, int):
                lines = len(s) // max(width, 1) + s.count("\n") + 1
                self.refuse_if_huge(len(s) + lines * measure(wrap))
        elif name in ("batch", "slice"):
            count = a.get("linecount", a.get("slices"))
            if isinstance(count, int) and count > MAX_RANGE:
                raise _Stop(f"the chat template asked {name} for {count:,} parts")
        elif name == "sum":
            if not isinstance(a.get("start", 0), (int, float)):
                raise _Stop("the chat template used sum on something other than numbers")
        elif name == "tojson":
            indent = a.get("indent")
            width = indent if isinstance(indent, int) else len(indent) if isinstance(indent, str) else 0
            factor = 6 if a.get("ensure_ascii") else 1
            self.refuse_if_huge(measure(a.get("x"), indent=max(width, 0)) * factor)
        elif name == "pprint":
            self.refuse_if_huge(measure(a.get("value"), indent=1) * 2)
        elif name in ("e", "escape", "forceescape", "xmlattr"):
            value = a.get("value", a.get("d"))
            if isinstance(value, str):  # &amp; &#34; &#39; are 4 characters longer, &lt; &gt; 3
                size = len(value) + 4 * (value.count("&") + value.count('"') + value.count("'")) \
                    + 3 * (value.count("<") + value.count(">"))
            else:
                size = measure(value) * 6
            self.refuse_if_huge(size)
        elif name == "string":
            self.refuse_if_huge(measure(a.get("value")))
        elif name in ("urlencode", "urlize"):
            self.refuse_if_huge(measure(a.get("value")) * 12)
        elif name == "list":
            value = a.get("value")
            if isinstance(value, _STR_TYPES):
                self.refuse_if_huge(len(value) * 5, "a huge list")
        return None


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
        if len(source) > MAX_TEMPLATE_CHARS:
            raise TemplateError(f"the chat template is {len(source):,} characters long; Cove accepts "
                                f"up to {MAX_TEMPLATE_CHARS:,}")
        self._env = GuardedEnvironment()
        try:
            self._template = self._env.from_string(source)
        except jinja2.TemplateError as exc:
            raise TemplateError(f"the chat template is not valid Jinja: {exc}") from exc
        except RecursionError as exc:
            raise TemplateError("the chat template is nested too deeply to compile") from exc
        except Exception as exc:  # e.g. an integer literal with thousands of digits
            raise TemplateError(f"the chat template could not be compiled: {type(exc).__name__}: {exc}") from exc

    def render(self, messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool = True,
               seconds: float = RENDER_SECONDS, max_chars: int = MAX_PROMPT_CHARS,
               variables: Mapping[str, Any] | None = None) -> RenderedPrompt:
        """Render ``messages``; raises :class:`TemplateError` on failure, overrun or overgrowth.

        ``variables`` are further names the template reads (``enable_thinking``,
        ``reasoning_effort``, ``tools``...); they never replace the ones Cove sets itself."""
        def raise_exception(message: str) -> None:
            raise TemplateRefusal(f"the chat template refused the conversation: {message}")

        def strftime_now(fmt: str) -> str:
            if len(str(fmt)) > MAX_STRFTIME_CHARS:
                raise _Stop("the chat template passed strftime_now a huge format")
            return datetime.now().strftime(fmt)

        env = self._env
        parts: list[str] = []
        total = 0
        previous = sys.gettrace()
        env.start(seconds)
        sys.settrace(_tracer(env))
        try:
            for piece in self._template.generate({
                **(variables or {}),
                "messages": list(messages), "eos_token": self.eos_token, "bos_token": self.bos_token,
                "add_generation_prompt": add_generation_prompt, "raise_exception": raise_exception,
                "strftime_now": strftime_now,
            }):
                total += len(piece)
                if total > max_chars:
                    raise TemplateError(f"the chat template produced more than {max_chars:,} characters")
                env.check_time()
                parts.append(piece)
        except TemplateError:
            raise
        except _Stop as stop:
            raise TemplateError(str(stop)) from None
        except RecursionError as exc:
            raise TemplateError("the chat template recursed without end") from exc
        except MemoryError as exc:
            raise TemplateError("the chat template ran out of memory") from exc
        except Exception as exc:  # a template is someone else's code: any failure is the template's
            raise TemplateError(f"the chat template failed: {type(exc).__name__}: {exc}") from exc
        finally:
            sys.settrace(previous)
            env.stop()
        return RenderedPrompt("".join(parts), [self.eos_token] if self.eos_token else [])


def _tracer(env: GuardedEnvironment) -> Any:
    """A trace function that checks the deadline every few hundred lines of Python the render
    runs: the template's own code and the filters and runtime it calls (not this module, whose
    loops check the deadline themselves)."""
    counter = [0]
    here = __file__

    def local(_frame: Any, event: str, _arg: Any) -> Any:
        if event == "line":
            counter[0] += 1
            if counter[0] % 256 == 0:
                env.check_time()
        return local

    def global_trace(frame: Any, _event: str, _arg: Any) -> Any:
        return None if frame.f_code.co_filename == here else local

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
