"""Markdown rendering for the chat view: structure, highlighted code, escaping, themes, speed."""

from __future__ import annotations

import re

import pytest

from desktop.core.text.markdown import DARK, LIGHT, MarkdownRenderer
from tests.helpers.pace import budget, measure


@pytest.fixture(scope="module")
def renderer() -> MarkdownRenderer:
    return MarkdownRenderer(LIGHT)


def test_headings_emphasis_lists(renderer: MarkdownRenderer) -> None:
    out = renderer.render("# Title\n\n## Sub\n\n**bold** *it* ~~gone~~ `x<y`\n\n- a\n- b\n\n1. one\n2. two\n")
    h = out.html
    assert "<h1>Title</h1>" in h and "<h2>Sub</h2>" in h
    assert "<strong>bold</strong>" in h and "<em>it</em>" in h and "<s>gone</s>" in h
    assert "<code>x&lt;y</code>" in h
    assert re.search(r"<ul>\s*<li>a</li>\s*<li>b</li>\s*</ul>", h)
    assert re.search(r"<ol>\s*<li>one</li>\s*<li>two</li>\s*</ol>", h)
    assert out.code_blocks == []


def test_table(renderer: MarkdownRenderer) -> None:
    h = renderer.render("| Name | Size |\n|------|-----:|\n| a.gguf | 1 GB |\n| b.gguf | 2 GB |\n").html
    assert "<table>" in h and "<th>Name</th>" in h
    assert "a.gguf" in h and "2 GB" in h
    assert h.count("<tr>") == 3


def test_single_newline_is_a_line_break(renderer: MarkdownRenderer) -> None:
    assert "<br" in renderer.render("line one\nline two").html


def test_fenced_code_is_highlighted_with_copy_links(renderer: MarkdownRenderer) -> None:
    text = (
        "First:\n\n```python\ndef add(a, b):\n    return a + b  # sum\n```\n\n"
        "Second:\n\n```bash\necho \"hi\" > out.txt\n```\n\n"
        "Third:\n\n```\nplain < text & more\n```\n"
    )
    out = renderer.render(text)
    assert out.code_blocks == [
        "def add(a, b):\n    return a + b  # sum",
        'echo "hi" > out.txt',
        "plain < text & more",
    ]
    for n in range(3):
        assert f'href="copy:{n}"' in out.html
    assert 'href="copy:3"' not in out.html
    # Pygments inline styles (no CSS classes, which Qt's rich text would not resolve).
    python_part = out.html.split('href="copy:1"')[0]
    assert re.search(r'<span style="[^"]*color: ?#[0-9A-Fa-f]{3,6}[^"]*">def</span>', python_part)
    assert 'class="' not in out.html
    assert ">python<" in out.html and ">bash<" in out.html
    # The code's own characters are escaped, never live markup.
    assert "&lt; text &amp; more" in out.html


def test_copy_numbering_restarts_per_render(renderer: MarkdownRenderer) -> None:
    renderer.render("```\na\n```\n```\nb\n```\n")
    out = renderer.render("```\nc\n```\n")
    assert out.code_blocks == ["c"]
    assert 'href="copy:0"' in out.html and 'href="copy:1"' not in out.html


def test_raw_html_is_escaped(renderer: MarkdownRenderer) -> None:
    evil = ('<script>alert("x")</script>\n\n<img src=x onerror=alert(1)>\n\n'
            'inline <b onclick="steal()">bold</b> <iframe src="http://x"></iframe>')
    h = renderer.render(evil).html
    assert "<script" not in h.lower()
    assert "<img" not in h.lower() and "<iframe" not in h.lower()
    assert "<b " not in h
    assert "&lt;script&gt;" in h
    assert "&lt;img" in h


def test_dangerous_link_is_not_a_link(renderer: MarkdownRenderer) -> None:
    h = renderer.render("[click](javascript:alert(1)) and [ok](https://example.org)").html
    assert 'href="javascript' not in h
    assert '<a href="https://example.org">ok</a>' in h


def test_unknown_language_still_renders_escaped_code(renderer: MarkdownRenderer) -> None:
    out = renderer.render('```klingon-script"><b>\nif (a < b) { qapla("&"); }\n```\n')
    assert out.code_blocks == ['if (a < b) { qapla("&"); }']
    h = out.html
    assert "if (a &lt; b)" in h
    assert "<b>" not in h
    assert 'href="copy:0"' in h
    assert "klingon-script&quot;&gt;&lt;b&gt;" in h  # the label, as text


def test_code_in_language_label_is_escaped(renderer: MarkdownRenderer) -> None:
    h = renderer.render("```<script>\nx\n```\n").html
    assert "<script>" not in h
    assert "&lt;script&gt;" in h


def _code_background(h: str) -> str:
    match = re.search(r'bgcolor="(#[0-9a-fA-F]{6})"', h)
    assert match, h
    return match.group(1)


def test_light_and_dark_themes_differ() -> None:
    text = "```python\nprint('hi')\n```\n"
    light = MarkdownRenderer(LIGHT).render(text).html
    dark = MarkdownRenderer(DARK).render(text).html
    assert _code_background(light) == LIGHT.code_background
    assert _code_background(dark) == DARK.code_background
    assert LIGHT.code_background != DARK.code_background
    assert light != dark  # the highlighting colours differ too


ANSWER = """## Sorting a list in Python

Python has **two** ways to sort: the `sorted()` built-in, which returns a *new* list, and the
`list.sort()` method, which sorts in place. Both are stable and accept a `key` function.

1. Use `sorted(items)` when you need to keep the original order.
2. Use `items.sort()` when memory matters.
3. Pass `reverse=True` for descending order.

```python
people = [("Ada", 36), ("Alan", 41), ("Grace", 85)]
by_age = sorted(people, key=lambda person: person[1])
people.sort(key=lambda person: person[0].lower(), reverse=True)
for name, age in by_age:
    print(f"{name} is {age} years old")
```

| Function | Returns | In place |
|----------|---------|----------|
| `sorted` | new list | no |
| `list.sort` | `None` | yes |

- The `key` function is called **once** per element.
- Sorting is *O(n log n)* in the worst case.
- For complex orderings, use `functools.cmp_to_key` or tuples as keys.

> Tip: `operator.itemgetter(1)` is a little faster than a lambda for tuple fields.

That is all you need for everyday sorting; for huge data sets consider `heapq.nsmallest` when you
only want the first few items, since it avoids sorting everything.
"""


def test_render_speed_of_a_typical_answer() -> None:
    renderer = MarkdownRenderer(DARK)
    answer = ANSWER + "\n" + ANSWER  # 735 tokens by SmolLM2's tokenizer: above the 500 aimed at
    out = renderer.render(answer)  # warm-up: lexer lookup and first-use imports
    pace = measure(lambda: renderer.render(answer))
    print(f"\nrendered a 735-token answer ({len(answer)} chars) in {pace} (median of 5)")
    assert len(out.code_blocks) == 2
    assert pace.units < budget(0.020), str(pace)


def test_split_blocks_keeps_code_fences_whole():
    from desktop.core.text.markdown import split_blocks

    text = "# Title\n\nPara one\nline two\n\n```py\na = 1\n\nb = 2\n```\n\n- x\n- y\n\n\nend"
    assert split_blocks(text) == ["# Title", "Para one\nline two", "```py\na = 1\n\nb = 2\n```", "- x\n- y", "end"]
    assert split_blocks("") == []
    assert split_blocks("```\nunfinished\n\nstill code") == ["```\nunfinished\n\nstill code"]


def test_math_is_shown_legibly():
    from desktop.core.text.markdown import MarkdownRenderer, math_to_html

    assert math_to_html(r"E = mc^2") == "E = mc<sup>2</sup>"
    assert math_to_html(r"\sum_{i=1}^{n} i = \frac{n(n+1)}{2}") == "∑<sub>i=1</sub><sup>n</sup> i = n(n+1)/2"
    assert "α" in math_to_html(r"\alpha") and "≤" in math_to_html(r"a \leq b")
    assert math_to_html(r"\broken{") == r"\broken{"  # unparseable: shown as written, never lost
    assert math_to_html("a<b") == "a&lt;b"
    html = MarkdownRenderer().render("Inline $x^2$ and a price of $5 and $6.\n\n$$\\frac{a}{b}$$").html
    assert "x<sup>2</sup>" in html and "a/b" in html and "$5 and $6" in html
