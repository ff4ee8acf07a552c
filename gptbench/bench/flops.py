"""Model FLOPs per token and MFU, by the PaLM convention (Chowdhery et al. 2022, appendix B)."""

from __future__ import annotations

from gptbench.model.config import GPTConfig, count_params

FLOPS_FORMULA = "6N + 12LTC (PaLM appx. B; N = params excl. position embeddings, tied LM head counted)"
# The same convention for an untied head (the book's GPTModel): the head's matmul counts, both lookup tables do not.
FLOPS_FORMULA_UNTIED = "6N + 12LTC (PaLM appx. B; N = params excl. both embedding tables, untied LM head counted)"


def matmul_params(model: GPTConfig) -> int:
    """N: parameters that take part in matrix multiplies. The tied embedding counts (it is the LM head's
    matmul); the position table does not (it is only looked up). An untied head is a matmul of its own, and then
    the token table is only looked up too. Norms and biases are a rounding error."""
    lookups = model.block_size * model.n_embd + (0 if model.tie_head else model.vocab_size * model.n_embd)
    return count_params(model) - lookups


def formula_for(model: GPTConfig) -> str:
    """The formula string a report records for `model`."""
    return FLOPS_FORMULA if model.tie_head else FLOPS_FORMULA_UNTIED


def flops_per_token(model: GPTConfig, seq_len: int) -> float:
    """Training FLOPs per token: forward + backward is 3x forward, and a forward matmul with N weights is 2N
    per token, giving 6N; attention's QK^T and AV add 2*2*T*C per layer forward, so 12*L*T*C in all.
    Causal masking's skipped half is counted, as is the convention that makes MFU comparable."""
    n = matmul_params(model)
    return 6 * n + 12 * model.n_layer * seq_len * model.n_embd


def mfu(tokens_per_sec: float, flops_token: float, peak_tflops: float, devices: int = 1) -> float:
    """Achieved model FLOP/s over the peak of all devices: a 0-1 fraction."""
    return tokens_per_sec * flops_token / (peak_tflops * 1e12 * devices)


# Hardware FLOPs with per-block activation checkpointing: each block's forward runs twice (once in forward, once
# recomputed in backward), the embeddings, final norm, LM head and loss once. One block's forward is 2 x its matmul
# weights per token plus attention's 4TC, so the recomputation adds 2·N_blocks + 4LTC to the model's 6N + 12LTC,
# with N_blocks = N - V·C (the LM head's matmul, tied or not, is not recomputed). For GPT-2 124M at T = 1024 this is
# 8.55e8 + 1.70e8 + 0.38e8 = 1.06e9 per token (padded vocabulary), 1.24x the model FLOPs; "8N + 16LTC" would count
# the head's recompute too (1.33x).
HARDWARE_FLOPS_FORMULA = (
    "6N + 12LTC + 2·N_blocks + 4LTC (blocks' forward recomputed; N_blocks = N - V·C, head not recomputed)"
)


def recomputed_flops_per_token(model: GPTConfig, seq_len: int) -> float:
    """The FLOPs per token that per-block activation checkpointing adds: every block's forward once more."""
    n_blocks = matmul_params(model) - model.vocab_size * model.n_embd
    return 2 * n_blocks + 4 * model.n_layer * seq_len * model.n_embd


def hardware_flops_per_token(model: GPTConfig, seq_len: int) -> float:
    """FLOPs per token the hardware does with per-block activation checkpointing (HFU's numerator; MFU keeps the
    model's FLOPs, so that recomputation never looks like speed)."""
    return flops_per_token(model, seq_len) + recomputed_flops_per_token(model, seq_len)
