"""Time (and, with prices, money) for a whole training run at a given throughput."""

from __future__ import annotations

FINEWEB_10B_TOKENS = 10e9  # the FineWeb-Edu/FineWeb 10B-token GPT-2 sample (llm.c, nanoGPT speedruns)


def hours_for(tokens: float, tokens_per_sec: float) -> float:
    """Wall-clock hours to process `tokens` at `tokens_per_sec`."""
    return tokens / tokens_per_sec / 3600
