"""An example for `gptbench run --model-factory examples/swiglu_gpt.py:make_model`: GPT-2 with a SwiGLU MLP.

The factory builds gptbench's own GPT and swaps each block's GELU MLP for SwiGLU (Shazeer 2020, "GLU Variants
Improve Transformer"), with the hidden width cut to about 8/3 of the embedding so the MLP keeps GPT-2's parameter
count. gptbench reads the vocabulary and context from `model.config`, and counts the FLOPs, since its 6N + 12LTC
formula knows nothing of this MLP.

    gptbench run --device cpu --model-factory examples/swiglu_gpt.py:make_model \
        --model-arg n_layer=4 --model-arg n_embd=256 --model-arg n_head=4 --seq 256
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from gptbench.model.config import GPTConfig
from gptbench.model.gpt import GPT


class SwiGLU(nn.Module):
    """silu(x W_gate) * (x W_up), then W_down; hidden width a multiple of 64 near 8/3 of the embedding."""

    def __init__(self, n_embd: int) -> None:
        super().__init__()
        hidden = 64 * round(8 * n_embd / 3 / 64)
        self.gate = nn.Linear(n_embd, hidden, bias=False)
        self.up = nn.Linear(n_embd, hidden, bias=False)
        self.down = nn.Linear(hidden, n_embd, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.silu(self.gate(x)) * self.up(x))


def make_model(n_layer: int = 12, n_head: int = 12, n_embd: int = 768, block_size: int = 1024, vocab_size: int = 50304) -> GPT:
    """GPT-2's shape (vocabulary padded to 50304) with SwiGLU MLPs; forward(idx, targets) returns the loss."""
    config = GPTConfig(n_layer=n_layer, n_head=n_head, n_embd=n_embd, vocab_size=vocab_size, block_size=block_size)
    model = GPT(config)
    for block in model.h:
        block.mlp = SwiGLU(n_embd)
    return model
