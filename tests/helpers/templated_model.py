"""A copy of a real model with another chat template put in (the ``gguf`` package's own tool).

SmolLM2 speaks ChatML, so ChatML-family templates (Qwen3, QwQ, Hermes) keep their meaning: the
weights are SmolLM2's, the prompt format and its thinking or tool conventions the template's.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parents[1] / "fixtures" / "templates"


def with_template(model: Path, template: str, target: Path) -> Path:
    """``target``: ``model`` with ``template`` (text, or a name in tests/fixtures/templates) as its
    ``tokenizer.chat_template``. Made once; reused while it exists."""
    if target.is_file():
        return target
    source = TEMPLATES / f"{template}.jinja"
    text = source.read_text() if source.is_file() else template
    template_file = target.with_suffix(".jinja")
    target.parent.mkdir(parents=True, exist_ok=True)
    template_file.write_text(text)
    partial = target.with_name(target.name + ".part")
    done = subprocess.run([sys.executable, "-m", "gguf.scripts.gguf_new_metadata", "--chat-template-file",
                           str(template_file), "--force", str(model), str(partial)], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"gguf_new_metadata failed: {done.stderr.strip()[-400:]}")
    partial.replace(target)
    return target
