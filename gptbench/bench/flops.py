"""Model FLOPs per token and MFU, by the PaLM convention (Chowdhery et al. 2022, appendix B)."""

from __future__ import annotations

from gptbench.model.config import GPTConfig, count_params

FLOPS_FORMULA = "6N + 12LTC (PaLM appx. B; N = params excl. position embeddings, tied LM head counted)"


def matmul_params(model: GPTConfig) -> int:
    """N: parameters that take part in matrix multiplies. The tied embedding counts (it is the LM head's
    matmul); the position table does not (it is only looked up). Norms and biases are a rounding error."""
    return count_params(model) - model.block_size * model.n_embd


def flops_per_token(model: GPTConfig, seq_len: int) -> float:
    """Training FLOPs per token: forward + backward is 3x forward, and a forward matmul with N weights is 2N
    per token, giving 6N; attention's QK^T and AV add 2*2*T*C per layer forward, so 12*L*T*C in all.
    Causal masking's skipped half is counted, as is the convention that makes MFU comparable."""
    n = matmul_params(model)
    return 6 * n + 12 * model.n_layer * seq_len * model.n_embd


def mfu(tokens_per_sec: float, flops_token: float, peak_tflops: float, devices: int = 1) -> float:
    """Achieved model FLOP/s over the peak of all devices: a 0-1 fraction."""
    return tokens_per_sec * flops_token / (peak_tflops * 1e12 * devices)
