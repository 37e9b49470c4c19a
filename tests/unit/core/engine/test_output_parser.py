"""The output parser splits reasoning from the answer identically wherever token boundaries fall.

Each format's realistic output is tokenized with its family's real tokenizer (llama.cpp's vocab-only
GGUFs; a harmony vocabulary with gpt-oss's control tokens built from GPT-2's), fed token by token,
and split in two at every character; the format comes from the family's real chat template.
"""

from __future__ import annotations

import codecs
from pathlib import Path

import llama_cpp
import pytest

from desktop.core.engine.output_parser import ANSWER, REASONING, OutputParser, split_text
from desktop.core.engine.thinking import detect_format
from desktop.core.engine.thinking_format import ThinkingFormat
from tests.helpers.llama_sdist import harmony_vocab_path, vocab_path

TEMPLATES = Path(__file__).resolve().parents[3] / "fixtures" / "templates"

# (template, vocab, output, thinking asked for, expected reasoning, expected answer)
CASES = {
    "qwen3": ("Qwen-Qwen3-0.6B", "qwen35",
              "<think>\nThe user asks for 2+2. That is 4 — naïve ✓.\n</think>\n\nThe answer is **4**.",
              True, "The user asks for 2+2. That is 4 — naïve ✓.", "The answer is **4**."),
    "qwen3-repeated": ("Qwen-Qwen3-0.6B", "qwen35",
                       "<think>First.</think>\n\nPart one. <think>Second thought.</think>Part two.",
                       True, "First.Second thought.", "Part one. Part two."),
    "qwen3-never-closed": ("Qwen-Qwen3-0.6B", "qwen35", "<think>\nStill thinking about 日本 and",
                           True, "Still thinking about 日本 and", ""),
    "qwen3-no-thinking": ("Qwen-Qwen3-0.6B", "qwen35", "Four.", False, "", "Four."),
    "r1-distill": ("deepseek-ai-DeepSeek-R1-Distill-Llama-8B", "llama-bpe",
                   "Okay, so the user wants 2+2.\nThat's 4.\n</think>\n\nIt is 4.", True,
                   "Okay, so the user wants 2+2.\nThat's 4.", "It is 4."),
    "r1-qwen": ("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B", "qwen2",
                "Hmm. Let me check: 2+2=4.\n</think>\n\n**4**", True, "Hmm. Let me check: 2+2=4.", "**4**"),
    "mistral": ("mistralai-Ministral-3-14B-Reasoning-2512", "llama-spm",
                "[THINK]The user greets me; reply kindly.[/THINK]Hello! How can I help?", True,
                "The user greets me; reply kindly.", "Hello! How can I help?"),
    "gemma4": ("google-gemma-4-31B-it", "gemma-4",
               "<|channel>thought\nSimple arithmetic.<channel|>2 + 2 = 4", True, "Simple arithmetic.", "2 + 2 = 4"),
    "cohere": ("Cohere2MoE", "command-r",
               "<|START_THINKING|>Plan: answer directly.<|END_THINKING|>Sure: 4.", True,
               "Plan: answer directly.", "Sure: 4."),
    "harmony": ("openai-gpt-oss-120b", "harmony",
                "<|channel|>analysis<|message|>User asks 2+2. Answer 4.<|end|>"
                "<|start|>assistant<|channel|>final<|message|>2 + 2 = **4**.", True,
                "User asks 2+2. Answer 4.", "2 + 2 = **4**."),
    "harmony-commentary": ("openai-gpt-oss-120b", "harmony",
                           "<|channel|>analysis<|message|>Think.<|end|><|start|>assistant<|channel|>commentary"
                           "<|message|>Checking.<|end|><|start|>assistant<|channel|>final<|message|>Done.", True,
                           "Think.", "Checking.Done."),
}


def fmt_of(template: str) -> ThinkingFormat:
    return detect_format((TEMPLATES / f"{template}.jinja").read_text())


_TOKENIZERS: dict[str, llama_cpp.Llama] = {}


def tokenizer(vocab: str) -> llama_cpp.Llama:
    if vocab not in _TOKENIZERS:
        path = harmony_vocab_path() if vocab == "harmony" else vocab_path(vocab)
        _TOKENIZERS[vocab] = llama_cpp.Llama(str(path), vocab_only=True, verbose=False)
    return _TOKENIZERS[vocab]


def token_texts(vocab: str, text: str) -> list[str]:
    """``text`` as the runtime sees it: one decoded piece per token (special tokens as text)."""
    llm = tokenizer(vocab)
    ids = llm.tokenize(text.encode(), add_bos=False, special=True)
    decoder = codecs.getincrementaldecoder("utf-8")("replace")
    pieces = [decoder.decode(llm.detokenize([i], special=True)) for i in ids]
    if pieces and pieces[0].startswith(" ") and not text.startswith(" "):
        pieces[0] = pieces[0][1:]  # SentencePiece's word-start mark on the first token, as llama.cpp drops it
    assert "".join(pieces) == text, "the tokenizer does not round-trip this text"
    return pieces


def run(fmt: ThinkingFormat, pieces: list[str], thinking: bool) -> tuple[str, str]:
    parser = OutputParser(fmt, thinking)
    out = [p for piece in pieces for p in parser.feed(piece)] + parser.finish()
    assert all(p.text for p in out)
    return ("".join(p.text for p in out if p.kind == REASONING).rstrip(),
            "".join(p.text for p in out if p.kind == ANSWER).rstrip())


@pytest.mark.parametrize("case", sorted(CASES))
def test_split_is_the_same_at_every_boundary(case: str):
    template, vocab, text, thinking, reasoning, answer = CASES[case]
    fmt = fmt_of(template)
    assert fmt.thinks
    expected = (reasoning, answer)
    assert split_text(fmt, text, thinking) == expected
    tokens = token_texts(vocab, text)
    assert len(tokens) > 1
    assert run(fmt, tokens, thinking) == expected
    for i in range(len(text) + 1):
        assert run(fmt, [text[:i], text[i:]], thinking) == expected, f"split at {i}"
    assert run(fmt, list(text), thinking) == expected


def test_markers_split_across_tokens_are_held_back_not_shown():
    fmt = fmt_of("Qwen-Qwen3-0.6B")
    tokens = token_texts("qwen35", "<think>x</think>y")
    assert tokens[:2] == ["<th", "ink"]  # Qwen3.5's vocabulary spells the marker in pieces
    parser = OutputParser(fmt)
    shown = [p for t in tokens for p in parser.feed(t)] + parser.finish()
    assert [(p.kind, p.text) for p in shown] == [(REASONING, "x"), (ANSWER, "y")]


def test_a_stray_closing_marker_in_the_answer_is_not_shown():
    fmt = fmt_of("Qwen-Qwen3-0.6B")
    assert split_text(fmt, "<think>a</think>The capital is Paris</think>.") == ("a", "The capital is Paris.")
    r1 = fmt_of("deepseek-ai-DeepSeek-R1-Distill-Qwen-32B")
    assert split_text(r1, "plan</think>answer</think> more", thinking=True) == ("plan", "answer more")


def test_marker_as_the_very_first_token_and_a_false_start():
    fmt = fmt_of("Qwen-Qwen3-0.6B")
    assert split_text(fmt, "<think>a</think>b") == ("a", "b")
    assert split_text(fmt, "<thin and more") == ("", "<thin and more")
    assert split_text(fmt, "a < b") == ("", "a < b")


def test_harmony_markers_are_single_control_tokens():
    tokens = token_texts("harmony", "<|channel|>analysis<|message|>Hi<|end|>")
    assert tokens[0] == "<|channel|>" and tokens[2] == "<|message|>" and tokens[-1] == "<|end|>"


def test_a_budget_closes_the_block_the_way_the_format_does():
    for template, closing in (("Qwen-Qwen3-0.6B", "</think>\n\n"), ("openai-gpt-oss-120b", "<|end|><|start|>assistant"
                                                                                          "<|channel|>final<|message|>")):
        parser = OutputParser(fmt_of(template))
        first = parser.feed("<think>long" if "Qwen" in template else "<|channel|>analysis<|message|>long")
        assert parser.in_reasoning and parser.closing_text() == closing
        after = parser.feed(parser.closing_text()) + parser.feed("Answer.") + parser.finish()
        assert not parser.in_reasoning
        assert [(p.kind, p.text) for p in first + after] == [(REASONING, "long"), (ANSWER, "Answer.")]


def test_a_model_that_does_not_think_passes_text_through():
    fmt = fmt_of("meta-llama-Llama-3.1-8B-Instruct")
    assert not fmt.thinks
    assert split_text(fmt, "<think>not a marker here</think>") == ("", "<think>not a marker here</think>")
