"""GPT-2 shapes: a small frozen config and the presets, reached by name."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from gptbench.errors import GptbenchError

GPT2_VOCAB = 50257  # 50,000 BPE merges + 256 byte tokens + <|endoftext|>
PADDED_VOCAB = 50304  # next multiple of 64: tensor cores and tiled kernels like round sizes


@dataclass(frozen=True)
class GPTConfig:
    """Shape of a GPT-2 model; names follow the GPT-2 paper and code."""

    n_layer: int = 12
    n_head: int = 12
    n_embd: int = 768
    vocab_size: int = GPT2_VOCAB  # 50304 when padded: same model, faster matmuls
    block_size: int = 1024  # learned positions, so the longest sequence the model takes
    preset: str = "custom"
    # Switches for the variants people train: GPT-2 ties the LM head to the token embedding, has biases on
    # the q, k, v projection, trains here without dropout and starts from its own init (normal, std 0.02).
    # The book's GPTModel (Raschka, Build a Large Language Model from Scratch, ch. 4) unties the head, drops
    # the qkv bias, uses dropout 0.1 and keeps PyTorch's default init.
    tie_head: bool = True
    qkv_bias: bool = True
    dropout: float = 0.0  # on embeddings, attention weights and both residual branches, as the book does
    gpt2_init: bool = True

    def __post_init__(self) -> None:
        for field in ("n_layer", "n_head", "n_embd", "vocab_size", "block_size"):
            if getattr(self, field) <= 0:
                raise GptbenchError(f"{field} must be positive, got {getattr(self, field)}")
        if not 0.0 <= self.dropout < 1.0:
            raise GptbenchError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.n_embd % self.n_head:
            raise GptbenchError(
                f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}); choose --n-embd as a multiple of --n-head"
            )

    @classmethod
    def from_name(cls, name: str, **overrides: int | None) -> GPTConfig:
        """The preset `name`, with any non-None shape overrides applied."""
        key = name.lower()
        if key not in PRESETS:
            raise GptbenchError(f"unknown model preset {name!r}; choose one of: {', '.join(PRESETS)}")
        chosen: dict[str, Any] = {k: v for k, v in overrides.items() if v is not None}
        config = PRESETS[key]
        return replace(config, **chosen) if chosen else config

    def padded(self, multiple: int = 64) -> GPTConfig:
        """The same model with the vocabulary rounded up to a multiple (50257 → 50304)."""
        vocab = -(-self.vocab_size // multiple) * multiple
        return replace(self, vocab_size=vocab)

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @property
    def pads_by_default(self) -> bool:
        """Whether `--vocab-pad` is on unless the user says otherwise: the book's presets keep the book's 50257."""
        return not self.preset.startswith(BOOK_PREFIX)


BOOK_PREFIX = "book-"
# The book's GPTModel at GPT-2's four sizes: untied head, no qkv bias, dropout 0.1, PyTorch's default init.
_BOOK: dict[str, Any] = {"tie_head": False, "qkv_bias": False, "dropout": 0.1, "gpt2_init": False}

# The four GPT-2 sizes (Radford et al. 2019, table 2) and a tiny one that keeps tests to seconds.
PRESETS: dict[str, GPTConfig] = {
    "tiny": GPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=128, preset="tiny"),
    "124m": GPTConfig(n_layer=12, n_head=12, n_embd=768, preset="124m"),
    "355m": GPTConfig(n_layer=24, n_head=16, n_embd=1024, preset="355m"),
    "774m": GPTConfig(n_layer=36, n_head=20, n_embd=1280, preset="774m"),
    "1558m": GPTConfig(n_layer=48, n_head=25, n_embd=1600, preset="1558m"),
    "book-124m": GPTConfig(n_layer=12, n_head=12, n_embd=768, preset="book-124m", **_BOOK),
    "book-355m": GPTConfig(n_layer=24, n_head=16, n_embd=1024, preset="book-355m", **_BOOK),
    "book-774m": GPTConfig(n_layer=36, n_head=20, n_embd=1280, preset="book-774m", **_BOOK),
    "book-1558m": GPTConfig(n_layer=48, n_head=25, n_embd=1600, preset="book-1558m", **_BOOK),
    "book-tiny": GPTConfig(n_layer=2, n_head=2, n_embd=64, block_size=128, preset="book-tiny", **_BOOK),
}


def count_params(config: GPTConfig) -> int:
    """Parameters of the model; a tied LM head shares the token embedding (counted once), an untied one adds V x C."""
    c, layers = config.n_embd, config.n_layer
    per_block = (
        2 * 2 * c  # two layernorms, weight and bias
        + c * 3 * c
        + (3 * c if config.qkv_bias else 0)  # attention q, k, v projection
        + c * c
        + c  # attention output projection
        + c * 4 * c
        + 4 * c  # MLP up
        + 4 * c * c
        + c  # MLP down
    )
    embeddings = config.vocab_size * c + config.block_size * c
    head = 0 if config.tie_head else config.vocab_size * c
    return embeddings + layers * per_block + 2 * c + head  # + final layernorm
