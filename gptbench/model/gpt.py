"""GPT-2 in one readable file: pre-LN transformer blocks, tanh GELU, learned positions, tied LM head.

Switches in GPTConfig give the book's GPTModel from the same classes: an untied head, no qkv bias, dropout."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from gptbench.model.config import GPTConfig
from gptbench.model.loss import CHUNK_TOKENS, LOSSES, chunked_lm_loss, library_lm_loss

ATTENTION_BACKENDS = ("sdpa", "naive")


def dropout(p: float) -> nn.Module:
    """nn.Dropout(p), or nothing at all when p is 0: GPT-2's step then runs no extra kernel for it."""
    return nn.Dropout(p) if p > 0 else nn.Identity()


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention; `sdpa` uses torch's fused kernels (flash where available)."""

    mask: torch.Tensor  # the `naive` form's buffer

    def __init__(self, config: GPTConfig, attention: str) -> None:
        super().__init__()
        self.n_head, self.attention, self.dropout = config.n_head, attention, config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.qkv_bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)
        if attention == "naive":
            # The textbook form keeps its mask as a buffer, as GPT-2's original code did.
            mask = torch.tril(torch.ones(config.block_size, config.block_size, dtype=torch.bool))
            self.register_buffer("mask", mask, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        # (B, T, C) -> (B, n_head, T, head_dim)
        q, k, v = (t.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for t in (q, k, v))
        p = self.dropout if self.training else 0.0  # dropout on the attention weights, as the book applies it
        if self.attention == "sdpa":
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
        else:
            att = (q @ k.transpose(-2, -1)) / math.sqrt(k.size(-1))
            att = att.masked_fill(~self.mask[:T, :T], float("-inf"))
            y = F.dropout(F.softmax(att, dim=-1), p, self.training) @ v
        return self.c_proj(y.transpose(1, 2).contiguous().view(B, T, C))


class MLP(nn.Module):
    """Position-wise feed-forward: 4x expansion, GELU with GPT-2's tanh approximation."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x), approximate="tanh"))


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig, attention: str) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config, attention)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)
        self.drop = dropout(config.dropout)  # on each branch before it joins the residual stream (the book's)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln_1(x)))
        return x + self.drop(self.mlp(self.ln_2(x)))


class GPT(nn.Module):
    """GPT-2 language model: `forward(idx)` returns the logits, `forward(idx, targets)` the mean cross-entropy."""

    def __init__(self, config: GPTConfig, attention: str = "sdpa", loss: str = "standard") -> None:
        super().__init__()
        if attention not in ATTENTION_BACKENDS:
            raise ValueError(f"attention must be one of {ATTENTION_BACKENDS}, got {attention!r}")
        if loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
        self.config, self.loss = config, loss
        self.loss_chunk = CHUNK_TOKENS  # tokens per chunk of logits with loss="chunked"
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.drop = dropout(config.dropout)
        self.h = nn.ModuleList(Block(config, attention) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        if config.tie_head:
            self.lm_head.weight = self.wte.weight  # weight tying, as in GPT-2
        if not config.gpt2_init:
            return  # the book's model keeps what nn.Linear and nn.Embedding start with
        self.apply(self._init_weights)
        # GPT-2 scales the projections that write into the residual stream by 1/sqrt(2 * n_layer):
        # each block adds twice to the stream, and this keeps its variance from growing with depth.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None) -> torch.Tensor:
        T = idx.size(1)
        pos = torch.arange(T, device=idx.device)
        x = self.drop(self.wte(idx) + self.wpe(pos))
        for block in self.h:
            x = block(x)
        x = self.ln_f(x)
        if targets is not None and self.loss == "chunked":  # the same loss, one chunk of logits at a time
            return chunked_lm_loss(x, self.lm_head.weight, targets, self.loss_chunk)
        if targets is not None and self.loss != "standard":
            return library_lm_loss(self.loss, x, self.lm_head.weight, targets)
        logits = self.lm_head(x)
        if targets is None:
            return logits
        # Only the loss leaves: a caller holding the logits (B x T x vocab, the largest activation) through the
        # backward pass would raise peak memory by their size, and a compiled graph would have to write them out.
        return F.cross_entropy(logits.view(-1, logits.size(-1)).float(), targets.reshape(-1))

    def num_params(self) -> int:
        """Parameters, a tied embedding counted once."""
        return sum(p.numel() for p in self.parameters())
