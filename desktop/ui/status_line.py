"""The status line's summary of one answer: speed, first token, context, and thinking apart."""

from __future__ import annotations

from desktop.core.conversations.export_import import thought_label


def format_stats(stats: dict) -> str:
    """The status-line summary of one answer."""
    if not stats or "decode_tokens_per_s" not in stats:
        return ""
    line = (f"{stats['decode_tokens_per_s']:.1f} tokens/s · first token {stats['time_to_first_token_s']:.2f} s"
            f" · context {stats['context_used']}/{stats['context_size']}")
    if stats.get("reasoning_tokens"):
        line += (f" · {stats['reasoning_tokens']} thinking + {stats.get('answer_tokens', 0)} answer tokens"
                 f" · {thought_label(float(stats.get('thinking_s', 0.0))).lower()}")
        if stats.get("thinking_closed_by") == "budget":
            line += " (budget reached)"
    return line
