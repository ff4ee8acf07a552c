"""One GPT-2 training step as the projection sees it (shape, batch, precision, implementation, how its state is
spread over ranks), and the peak device memory of one rank running it: weights, gradients, AdamW's moments,
activations, and an allowance for the CUDA context, with sharding and activation checkpointing. Torch-free."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from gptbench.errors import GptbenchError

if TYPE_CHECKING:
    from gptbench.model.config import GPTConfig
    from gptbench.reports.schema import ModelShape

FP32 = 4  # bytes


@dataclass(frozen=True)
class Workload:
    """One GPT-2 training step on one GPU, as the model sees it: shape, batch, precision and implementation."""

    n_layer: int
    n_head: int
    n_embd: int
    vocab_size: int
    seq_len: int
    micro_batch: int
    grad_accum: int = 1
    block_size: int = 1024  # learned positions: only their parameter count matters here
    dtype: str = "bf16"  # matmul precision: bf16 / fp16 autocast, or fp32
    tf32: bool = True  # fp32 matmuls on tensor cores (dtype fp32 only)
    weights: str = "fp32"  # fp32 master weights under autocast (gptbench), or bf16 (the whole model cast to bf16)
    compile: bool = True  # torch.compile fuses residual add + LayerNorm + casts, and the loss
    attention: str = "sdpa"  # sdpa (flash: no T x T matrix in memory) or naive (scores materialised)
    adamw: str = "fused"  # fused | foreach | for-loop
    tied_head: bool = True  # LM head shares the token embedding (GPT-2, gptbench)
    dropout: bool = False  # residual dropout masks (gptbench trains without dropout)
    eval_forwards: float = 0.0  # forward-only micro-batches inside the timed interval, per step (evaluation)
    world_size: int = 1  # data-parallel ranks: what sharding divides the state over (memory only)
    sharding: str = "none"  # none (DDP) | optimizer (ZeRO-1: AdamW's moments split over ranks) | full (FSDP2)
    activation_checkpointing: bool = False  # keep only each block's input; recompute the block in backward

    def __post_init__(self) -> None:
        for name in ("n_layer", "n_head", "n_embd", "vocab_size", "seq_len", "micro_batch", "grad_accum"):
            if getattr(self, name) <= 0:
                raise GptbenchError(f"{name} must be positive, got {getattr(self, name)}")
        if self.world_size <= 0:
            raise GptbenchError(f"world_size must be positive, got {self.world_size}")
        checks = {"dtype": ("bf16", "fp16", "fp32"), "weights": ("fp32", "bf16"), "attention": ("sdpa", "naive")}
        checks["sharding"] = ("none", "optimizer", "full")
        checks["adamw"] = ("fused", "foreach", "for-loop")
        for name, allowed in checks.items():
            if getattr(self, name) not in allowed:
                raise GptbenchError(f"{name} {getattr(self, name)!r}: choose one of {', '.join(allowed)}")

    @property
    def act_bytes(self) -> int:
        """Bytes per activation element as the matmuls read and write them."""
        return FP32 if self.dtype == "fp32" else 2

    @property
    def resid_bytes(self) -> int:
        """The residual stream and LayerNorm outputs: fp32 under autocast (fp32 weights), else the weights' dtype."""
        return FP32 if self.weights == "fp32" else 2

    @property
    def weight_bytes(self) -> int:
        return FP32 if self.weights == "fp32" else 2

    @property
    def matmul_params(self) -> int:
        """Weights of the matmuls (blocks and LM head), which autocast casts to bf16 once per micro-batch."""
        return self.n_layer * 12 * self.n_embd**2 + self.vocab_size * self.n_embd

    @property
    def n_params(self) -> int:
        """All parameters: blocks with biases and norms, embeddings, and the LM head if it is not tied."""
        c = self.n_embd
        per_block = 12 * c * c + 13 * c  # qkv, proj, fc, proj weights and biases, two norms
        head = 0 if self.tied_head else self.vocab_size * c
        return self.n_layer * per_block + (self.vocab_size + self.block_size) * c + 2 * c + head

    @property
    def block_params(self) -> int:
        """One transformer block's parameters: the unit FSDP gathers, and the unit checkpointing recomputes."""
        return 12 * self.n_embd**2 + 13 * self.n_embd

    @property
    def tokens_per_step(self) -> int:
        return self.micro_batch * self.seq_len * self.grad_accum


def workload_of(shape: GPTConfig | ModelShape, **step: Any) -> Workload:  # step: Workload's other fields, their own types
    """A Workload for a model shape: a GPTConfig or a report's ModelShape (both carry GPT-2's shape fields)."""
    fields = ("n_layer", "n_head", "n_embd", "vocab_size", "block_size")
    return Workload(**{name: getattr(shape, name) for name in fields}, **step)


# What the device holds beyond PyTorch's allocator (CUDA context, cuBLAS/cuDNN workspaces): NVML's used memory minus
# the allocator's peak reserved, 1.449 and 1.450 GB in the two compiled GPT-2 runs of the H200 reference reports
# (reports/reference/20261204-175913_*default.json: 11.329 - 9.88; 20261204-180045_*batch.json: 37.854 - 36.404;
# torch 2.11, CUDA 13.0, 2026-12-04). Another driver or GPU may differ by some hundred MB.
CONTEXT_GB = 1.45
# What the caching allocator reserves beyond its peak allocation (fragmentation, rounding to blocks): reserved /
# allocated was 9.88 / 9.071 = 1.09 at micro-batch 16 and 36.404 / 30.586 = 1.19 at 64 in the same two runs; their
# mean, 1.14, is used for every step.
RESERVED_OVER_ALLOCATED = 1.14


@dataclass(frozen=True)
class MemoryBreakdown:
    """Estimated peak device memory of one rank's training step, by what holds it, in GB (1e9 bytes)."""

    weights_gb: float
    gradients_gb: float
    optimizer_gb: float  # AdamW's two moments
    activations_gb: float  # saved for backward, plus what one block holds while it is recomputed or gathered
    context_gb: float = CONTEXT_GB

    @property
    def allocator_gb(self) -> float:
        """What the caching allocator reserves beyond the tensors above (RESERVED_OVER_ALLOCATED)."""
        return (RESERVED_OVER_ALLOCATED - 1) * (self.weights_gb + self.gradients_gb + self.optimizer_gb + self.activations_gb)

    @property
    def total_gb(self) -> float:
        return self.weights_gb + self.gradients_gb + self.optimizer_gb + self.activations_gb + self.allocator_gb + self.context_gb


def memory_breakdown(w: Workload) -> MemoryBreakdown:
    """Estimated peak device memory of one rank, by part. An estimate: the allocator's fragmentation and
    torch.compile's buffer reuse move the real figure by some percent either way.

    Sharding divides state over `world_size` ranks as PyTorch's engines do: `optimizer` splits AdamW's moments
    (ZeroRedundancyOptimizer, ZeRO stage 1); `full` splits weights, gradients and moments (FSDP2 `fully_shard`, ZeRO
    stage 3) and gathers one block's weights at a time in fp32 (no mixed-precision policy: bench/sharding.py), two at
    once with prefetching, while autocast's bf16 copies of the matmul weights live from forward to backward unsharded.
    Activation checkpointing keeps each block's input (the residual stream) and recomputes one block at a time."""
    n = w.world_size
    p, wb, a, r, c = w.n_params, w.weight_bytes, w.act_bytes, w.resid_bytes, w.n_embd
    weights, grads, moments = float(p * wb), float(p * wb), float(2 * p * wb)  # all in the weights' dtype
    extra = 0.0
    if w.sharding == "full":
        weights, grads, moments = weights / n, grads / n, moments / n
        extra += 2 * w.block_params * wb  # the gathered unsharded blocks (this one and the prefetched next)
    elif w.sharding == "optimizer":
        moments /= n
    if w.weights == "fp32" and w.dtype != "fp32":
        extra += w.matmul_params * a  # autocast's bf16 copies of the weights, cached from forward to backward
    # Saved for backward, bytes per token per layer: the residual stream twice (LayerNorm inputs, r each), both
    # LayerNorm outputs as the matmuls see them (a each), q, k, v (3a), attention output and its transposed
    # copy (2a), the GELU input and output (4a + 4a): (2r + 15a) x C; plus one-byte dropout masks.
    per_layer = (2 * r + 15 * a + (2 if w.dropout else 0)) * c
    if w.attention == "sdpa":
        per_layer += FP32 * w.n_head  # flash attention keeps only a log-sum-exp per head
    else:
        per_layer += (FP32 + (a if a != FP32 else 0)) * w.n_head * w.seq_len  # the T x T probabilities (fp32, + bf16 copy)
    lp = FP32 if w.weights == "fp32" else a
    final = (r + a) * c + (a + 2 * lp) * w.vocab_size  # final norm; logits, saved log-probs and their gradient
    if w.compile and lp != a:
        # torch.compile fuses gptbench's fp32 upcast, log-softmax and loss: no fp32 log-probs are kept, only the logits
        # in the compute dtype. Measured: the H200 reference runs' peak allocation grew 448 kB per token from micro-batch
        # 16 to 64 (9.071 -> 30.586 GB), where the blocks and the logits account for 456 kB and fp32 log-probs and their
        # gradient would add 402 kB more (docs/methodology.md, "Memory").
        final = (r + a) * c + a * w.vocab_size
    # Checkpointed: each block keeps only its input (r x C per token); one block's activations live again while
    # it is recomputed in backward.
    layers = (w.n_layer * r * c + per_layer) if w.activation_checkpointing else w.n_layer * per_layer
    activations = w.micro_batch * w.seq_len * (layers + final) + extra
    return MemoryBreakdown(weights / 1e9, grads / 1e9, moments / 1e9, activations / 1e9)


def memory_estimate_gb(w: Workload) -> float:
    """Estimated peak device memory of one rank's training step, in GB (1e9 bytes): `memory_breakdown`'s total."""
    return memory_breakdown(w).total_gb
