"""The LM head and cross-entropy without the full logits: `chunked_lm_loss` takes the final hidden states and the head's
(tied) weight and gives the same mean cross-entropy as `F.cross_entropy(h @ W.T, y)`, but holds only one chunk of
logits at a time.

The (tokens x vocab) logits are the step's largest activation: at micro-batch 16 and seq 1024 the unfused loss keeps
16,384 x 50,304 of them in bf16, their fp32 copy and the fp32 gradient. Here each chunk of tokens computes its logits,
their log-sum-exp, and at once the gradient of the loss with respect to the chunk's hidden states and to the weight
(softmax minus the one-hot target, the closed form of cross-entropy's gradient), then drops the logits. Backward only
scales the saved gradients by the incoming one. The matmuls are the unfused loss's three (logits, dL/dh, dL/dW), so
no FLOP is added; what is saved is the memory, and the kernels that would read and write the logits again.

Plain torch, one `torch.autograd.Function`: it runs on every device and `torch.compile` traces it (the chunk loop
unrolls over static shapes)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

IGNORE_INDEX = -100  # F.cross_entropy's default: targets equal to it count in neither the sum nor the mean
# Tokens per chunk: 2,048 x 50,304 fp32 logits are 412 MB, small beside the activations at the default batch, and
# few enough chunks (8 at micro-batch 16, seq 1024) that the loop adds few kernel launches.
CHUNK_TOKENS = 2048
# standard: the full logits; chunked: this module's; liger and cce: a library's fused kernel (CUDA only).
LOSSES = ("standard", "chunked", "liger", "cce")
LIBRARY_LOSSES = {"liger": "liger_kernel", "cce": "cut_cross_entropy"}  # loss -> the module it imports


class _ChunkedLinearCrossEntropy(torch.autograd.Function):
    """Mean cross-entropy of (h @ W.T, y) over the targets that are not IGNORE_INDEX, chunk by chunk over tokens.
    The matmuls run in `dtype` (autocast's, or the inputs' own); logits are upcast to fp32 for the softmax, as the
    unfused path does; the gradients leave in h's and W's own dtypes."""

    @staticmethod
    def forward(
        ctx: Any, h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk: int, dtype: torch.dtype
    ) -> torch.Tensor:
        valid = targets != IGNORE_INDEX
        count = valid.sum()
        h_mm, w_mm = h.to(dtype), weight.to(dtype)
        total = torch.zeros((), dtype=torch.float32, device=h.device)
        grad_h = torch.empty_like(h)
        grad_w = torch.zeros(weight.shape, dtype=torch.float32, device=weight.device)
        for start in range(0, h.size(0), chunk):
            h_c, y_c, v_c = h_mm[start : start + chunk], targets[start : start + chunk], valid[start : start + chunk]
            logits = (h_c @ w_mm.t()).float()
            lse = torch.logsumexp(logits, dim=-1)
            y_safe = torch.where(v_c, y_c, 0).unsqueeze(1)
            total = total + torch.where(v_c, lse - logits.gather(1, y_safe).squeeze(1), 0.0).sum()
            # d(sum of losses)/d(logits) = softmax - one_hot(y), zero on ignored rows; divided by the count in backward.
            grad = torch.exp(logits - lse.unsqueeze(1))
            grad.scatter_add_(1, y_safe, torch.full_like(y_safe, -1, dtype=grad.dtype))
            grad = (grad * v_c.unsqueeze(1)).to(dtype)
            grad_h[start : start + chunk] = grad @ w_mm
            grad_w += grad.t() @ h_c
        ctx.save_for_backward(grad_h, grad_w, count)
        ctx.weight_dtype = weight.dtype
        return total / count

    @staticmethod
    def backward(ctx: Any, grad_out: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        grad_h, grad_w, count = ctx.saved_tensors
        scale = grad_out / count
        return (grad_h * scale).to(grad_h.dtype), (grad_w * scale).to(ctx.weight_dtype), None, None, None


def chunked_lm_loss(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor, chunk: int = CHUNK_TOKENS) -> torch.Tensor:
    """Mean cross-entropy of the logits `h @ weight.T` against `targets` (ignoring IGNORE_INDEX), never holding more
    than `chunk` tokens' logits. h: (..., C); weight: (V, C); targets: h's leading shape. Under autocast the matmuls
    run in autocast's dtype, as `nn.Linear`'s would."""
    if chunk <= 0:
        raise ValueError(f"chunk must be positive, got {chunk}")
    h = h.reshape(-1, h.size(-1))
    dtype = _autocast_dtype(h.device.type) or h.dtype
    with torch.autocast(h.device.type, enabled=False):  # the Function casts for itself
        return _ChunkedLinearCrossEntropy.apply(h, weight, targets.reshape(-1), chunk, dtype)


def standard_lm_loss(h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The unfused loss: the full logits, upcast to fp32, then cross-entropy (what `chunked_lm_loss` must equal)."""
    logits = F.linear(h, weight)
    return F.cross_entropy(logits.reshape(-1, logits.size(-1)).float(), targets.reshape(-1), ignore_index=IGNORE_INDEX)


def _autocast_dtype(device_type: str) -> torch.dtype | None:
    if not torch.is_autocast_enabled(device_type):
        return None
    return torch.get_autocast_dtype(device_type)


def library_lm_loss(library: str, h: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """The same loss through a library's fused kernel (CUDA only, Triton): `liger` (liger-kernel's fused linear
    cross-entropy, which follows autocast itself) or `cce` (Apple's cut-cross-entropy, given autocast's dtype).
    Whether one can run here is decided before any work (hardware/capability.py `loss_problem`)."""
    h, targets = h.reshape(-1, h.size(-1)), targets.reshape(-1)
    if library == "liger":
        from liger_kernel.transformers.functional import liger_fused_linear_cross_entropy

        return liger_fused_linear_cross_entropy(h, weight, targets, ignore_index=IGNORE_INDEX)
    if library == "cce":
        from cut_cross_entropy import linear_cross_entropy

        dtype = _autocast_dtype(h.device.type) or h.dtype
        with torch.autocast(h.device.type, enabled=False):
            return linear_cross_entropy(h.to(dtype), weight.to(dtype), targets, ignore_index=IGNORE_INDEX)
    raise ValueError(f"unknown loss library {library!r}")
