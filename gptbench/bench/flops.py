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
