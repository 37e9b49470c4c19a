"""Markdown to the HTML subset Qt's rich text understands, with highlighted code blocks.

markdown-it-py parses (CommonMark plus tables and strikethrough; raw HTML in messages is shown as
text, never interpreted), Pygments highlights with inline styles. Each code block gets a header
with its language and a ``copy:N`` link the view turns into a copy action.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field

from markdown_it import MarkdownIt
from mdit_py_plugins.dollarmath import dollarmath_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import get_lexer_by_name
from pygments.util import ClassNotFound
from pylatexenc.latex2text import LatexNodes2Text

_LATEX = LatexNodes2Text(math_mode="text")


@dataclass(frozen=True)
class Theme:
    """Colours for rendered messages."""

    code_background: str
    code_header: str
    text: str
    link: str
    pygments_style: str


LIGHT = Theme("#f4f4f6", "#6b6b78", "#1d1d22", "#2a62c9", "default")
DARK = Theme("#1e1f24", "#9a9aa8", "#e6e6ea", "#7aa7ff", "monokai")


@dataclass
class Rendered:
    """HTML for one message and the raw text of its code blocks (for the copy buttons)."""

    html: str
    code_blocks: list[str] = field(default_factory=list)


class MarkdownRenderer:
    """Renders message Markdown; one instance per theme, reusable across messages."""

    def __init__(self, theme: Theme = LIGHT) -> None:
        self.theme = theme
        self._formatter = HtmlFormatter(noclasses=True, nowrap=True, style=theme.pygments_style)
        self._md = (MarkdownIt("commonmark", {"html": False, "breaks": True})
                    .enable(["table", "strikethrough"])
                    .use(dollarmath_plugin, allow_space=False, double_inline=True))
        def fence(_renderer, tokens, idx, _options, _env):  # noqa: ANN001, ANN202 - markdown-it signature
            return self._render_fence(tokens[idx].content, tokens[idx].info or "")

        self._md.add_render_rule("fence", fence)
        self._md.add_render_rule("code_block", fence)

        def inline_math(_renderer, tokens, idx, _options, _env):  # noqa: ANN001, ANN202
            return f'<span style="font-family:serif; font-style:italic;">{math_to_html(tokens[idx].content)}</span>'

        def block_math(_renderer, tokens, idx, _options, _env):  # noqa: ANN001, ANN202
            return (f'<p align="center" style="font-family:serif; font-style:italic;">'
                    f"{math_to_html(tokens[idx].content)}</p>\n")

        self._md.add_render_rule("math_inline", inline_math)
        self._md.add_render_rule("math_inline_double", block_math)
        self._md.add_render_rule("math_block", block_math)
        self._md.add_render_rule("math_block_label", block_math)
        self._blocks: list[str] = []
        self._first_index = 0

    def render(self, text: str, first_code_index: int = 0) -> Rendered:
        """Render ``text`` (Markdown) to Qt-friendly HTML; copy links count from ``first_code_index``."""
        self._blocks = []
        self._first_index = first_code_index
        body = self._md.render(text)
        blocks, self._blocks = self._blocks, []
        return Rendered(body, blocks)

    def _render_fence(self, code: str, info: str) -> str:
        language = info.strip().split(" ")[0]
        index = self._first_index + len(self._blocks)
        self._blocks.append(code.rstrip("\n"))
        lexer = None
        if language:
            try:
                lexer = get_lexer_by_name(language)
            except ClassNotFound:
                lexer = None
        highlighted = highlight(code, lexer, self._formatter) if lexer else html.escape(code)
        label = html.escape(language or "code")
        t = self.theme
        return (
            f'<table width="100%" cellspacing="0" cellpadding="6" bgcolor="{t.code_background}">'
            f'<tr><td><span style="color:{t.code_header}; font-size:small;">{label}</span>'
            f'&nbsp;&nbsp;<a href="copy:{index}" style="color:{t.link}; font-size:small;">Copy</a></td></tr>'
            f'<tr><td><pre style="margin:0; font-family:monospace; white-space:pre-wrap;">'
            f"{highlighted.rstrip()}</pre></td></tr></table>\n"
        )


def split_blocks(text: str) -> list[str]:
    """Split Markdown at blank lines outside code fences.

    While an answer streams, every block but the last is final, so the view renders each of those
    once and re-renders only the growing last one.
    """
    blocks: list[str] = []
    current: list[str] = []
    fence = ""
    for line in text.split("\n"):
        stripped = line.lstrip()
        if fence:
            if stripped.startswith(fence):
                fence = ""
        elif stripped.startswith(("```", "~~~")):
            fence = stripped[:3]
        elif not stripped and current:
            blocks.append("\n".join(current))
            current = []
            continue
        if stripped or current or fence:
            current.append(line)
    if current:
        blocks.append("\n".join(current))
    return blocks


COMMON_LANGUAGES = ("python", "bash", "sh", "javascript", "typescript", "json", "c", "cpp", "rust", "go",
                    "java", "html", "css", "sql", "yaml", "markdown", "toml", "diff")


def warm_up(languages: tuple[str, ...] = COMMON_LANGUAGES) -> None:
    """Import the lexers of common languages ahead of time (Pygments loads each lazily, which
    costs 10-20 ms the first time a language appears). Run it off the GUI thread."""
    renderer = MarkdownRenderer()
    for language in languages:
        renderer.render(f"```{language}\nx = 1\n```")


_BRACED_SCRIPT = re.compile(r"([_^])\{([^{}]*)\}")
_SIMPLE_SCRIPT = re.compile(r"([_^])([A-Za-z0-9])")
_SUB, _SUP, _END = "\x01", "\x03", "\x02"


def math_to_html(tex: str) -> str:
    """LaTeX math as legible text: Greek letters, operators and fractions in Unicode (pylatexenc),
    superscripts and subscripts as <sup>/<sub>. Unparseable input is shown as written."""
    marked = _BRACED_SCRIPT.sub(lambda m: (_SUB if m.group(1) == "_" else _SUP) + m.group(2) + _END, tex.strip())
    try:
        text = _LATEX.latex_to_text(marked)
    except Exception:  # noqa: BLE001 - a model's LaTeX can be anything; showing the source is still legible
        text = marked
    if not text.strip():
        text = tex.strip()
    escaped = html.escape(text)
    escaped = _SIMPLE_SCRIPT.sub(lambda m: (_SUB if m.group(1) == "_" else _SUP) + m.group(2) + _END, escaped)
    return _close_scripts(escaped)


def _close_scripts(text: str) -> str:
    out: list[str] = []
    stack: list[str] = []
    for char in text:
        if char in (_SUB, _SUP):
            tag = "sub" if char == _SUB else "sup"
            stack.append(tag)
            out.append(f"<{tag}>")
        elif char == _END:
            if stack:
                out.append(f"</{stack.pop()}>")
        else:
            out.append(char)
    out.extend(f"</{tag}>" for tag in reversed(stack))
    return "".join(out)
