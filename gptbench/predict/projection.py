"""Projected speed of one GPT-2 training step on a GPU nobody here has measured: an analytical roofline model.

Every operation of the forward pass, the backward pass and the optimizer is listed with the FLOPs it does and the
bytes it moves through device memory; its time is max(FLOPs / (peak x matmul efficiency), bytes / (bandwidth x
memory efficiency)); a step is the sum. The two efficiencies (and a penalty for a vocabulary that is not a multiple
of 64) are fitted to measurements, see gptbench/predict/calibration.py. Everything here is a projection, and is
labelled so wherever it is shown. The byte counts follow how PyTorch runs gptbench's model (autocast, fp32 master
weights, LayerNorm and softmax in fp32); they are approximations, stated per operation.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace

from gptbench.errors import GptbenchError
from gptbench.hardware.specs import GpuSpec
from gptbench.predict.workload import FP32, Workload, memory_estimate_gb


@dataclass(frozen=True)
class Efficiencies:
    """Fractions of the datasheet that real kernels reach; fitted in calibration.py, never guessed per GPU."""

    matmul: float  # share of the dense tensor-core peak reached by matmuls and flash attention
    memory: float  # share of the datasheet bandwidth reached by memory-bound kernels
    unaligned: float  # further factor on the LM-head matmul when the vocabulary is not a multiple of 64

    def __post_init__(self) -> None:
        for name in ("matmul", "memory", "unaligned"):
            if not 0 < getattr(self, name) <= 1:
                raise GptbenchError(f"efficiency {name} must be in (0, 1], got {getattr(self, name)}")


# Memory-bound kernels are held at the share of datasheet bandwidth that a tuned streaming kernel reaches: 1.80 of
# 2.04 TB/s (88%) on an A100 80GB SXM, NVIDIA developer forum "Trouble to Reach Peak Bandwidth of A100" (2025),
# https://forums.developer.nvidia.com/t/trouble-to-reach-peak-bandwidth-of-a100/339083 ("around 90%" is the most
# any kernel reached in the GTC talk it cites). It was fixed rather than fitted when every calibration point was an
# A100, whose data cannot tell slow matmuls from slow memory traffic; it stays fixed (one outside anchor) although the
# points now span GPUs with different FLOP-to-bandwidth ratios, which would let a later fit try.
MEMORY_EFFICIENCY = 0.88

# Fitted by `python benchmarks/projection_vs_measured.py --fit` on the points named in CALIBRATED_ON (calibration.csv
# plus committed GPU reports, each weighted by calibration.csv's `weight`); tests/test_projection.py refits and fails if
# these drift from the data. Unweighted (before the single-step rows were weighted 0.5) the fit was matmul 0.52,
# unaligned 0.34; on the five A100 points alone it was matmul 0.53, unaligned 0.33.
EFFICIENCIES = Efficiencies(matmul=0.53, memory=MEMORY_EFFICIENCY, unaligned=0.33)
CALIBRATED_ON = (
    "raschka-a100-flash-eager",
    "raschka-a100-compile",
    "raschka-a100-vocab64",
    "raschka-a100-batch32",
    "llmc-8xa100",
    "runpod-b200-b128",
    "runpod-h200-b128",
    "runpod-h100-sxm-b64",
    "runpod-h100-pcie-b64",
    "runpod-h100-nvl-b128",
    "runpod-a100-sxm4-80gb-b64",
    "runpod-a100-pcie-80gb-b64",
    "runpod-l40s-b32",
    "runpod-l40-b32",
    "runpod-rtx5090-b32",
    "runpod-a6000-b64",
    "runpod-l4-b16",
    "llmc-8xh100",
    "nanogpt-rtx4090",
    "20261204-175913_vm_nvidia-h200_acceptance-default.json#0",
    "20261204-180045_vm_nvidia-h200_acceptance-batch.json#0",
)


@dataclass(frozen=True)
class Op:
    """One kernel (or a group that moves the same data): what it computes and what it reads and writes."""

    name: str
    phase: str  # forward | backward | optimizer
    flops: float
    bytes: float
    unaligned: bool = False  # a matmul with a dimension that is not a multiple of 64


@dataclass(frozen=True)
class Projection:
    """The model's answer for one workload on one GPU. Every figure is projected, not measured."""

    gpu: str
    tokens_per_sec: float
    step_time_s: float
    matmul_tflops_peak: float
    phase_time_s: dict[str, float]  # forward (evaluation batches included), backward, optimizer: per step
    memory_gb: float  # estimated peak device memory
    memory_capacity_gb: float | None
    basis: str = "projected"

    @property
    def fits(self) -> bool | None:
        """Whether the memory estimate fits the GPU; None when the spec table has no capacity."""
        return None if self.memory_capacity_gb is None else self.memory_gb <= self.memory_capacity_gb


def _linear(name: str, w: Workload, tokens: int, k: int, m: int, unaligned: bool = False) -> Iterator[Op]:
    """Y = X W^T with X tokens x k, W m x k: one forward matmul, two backward (dX and dW)."""
    a, flops = w.act_bytes, 2.0 * tokens * k * m
    yield Op(name, "forward", flops, a * (tokens * k + k * m + tokens * m), unaligned)
    yield Op(f"{name} dX", "backward", flops, a * (tokens * m + k * m + tokens * k), unaligned)
    yield Op(f"{name} dW", "backward", flops, a * (tokens * m + tokens * k + k * m), unaligned)


def _attention(w: Workload, n: int) -> Iterator[Op]:
    """Attention over n tokens: flash (causal half of the T x T work, 2.5x in backward as it recomputes
    the scores) or naive (full work, and the score matrix written and read by every elementwise step)."""
    a, c, t = w.act_bytes, w.n_embd, w.seq_len
    scores = n * w.n_head * t  # elements of the B x H x T x T matrix
    if w.attention == "sdpa":
        fwd = 2.0 * n * t * c  # QK^T and AV, 2 * 2 * B * T^2 * C, halved by causal block skipping
        yield Op("flash attention", "forward", fwd, a * 4 * n * c)
        yield Op("flash attention", "backward", 2.5 * fwd, a * 8 * n * c)
    else:
        f = FP32  # autocast runs softmax in fp32
        cast = (f + a) if a != f else 0
        if w.compile:  # one fused scale + mask + softmax (+ cast) kernel each way
            fwd_bytes, bwd_bytes = a + (a + 1 + a + cast) + a, a + a + 3 * a + 2 * a
        else:  # write S; scale; mask; softmax; cast; read by AV -- and their gradients in reverse
            fwd_bytes = a + 2 * a + (2 * a + 1) + (a + f) + cast + a
            bwd_bytes = a + a + cast + 3 * f + (2 * f + 1) + cast + 2 * a + 2 * a
        yield Op("attention QK^T, AV", "forward", 4.0 * n * t * c, a * 4 * n * c)
        yield Op("attention scores (T x T)", "forward", 0.0, scores * fwd_bytes)
        yield Op("attention QK^T, AV", "backward", 8.0 * n * t * c, a * 8 * n * c)
        yield Op("attention scores (T x T)", "backward", 0.0, scores * bwd_bytes)
    yield Op("head transpose copy", "forward", 0.0, 2 * a * n * c)
    yield Op("head transpose copy", "backward", 0.0, 2 * a * n * c)


def _norms_and_residuals(w: Workload, n: int) -> Iterator[Op]:
    """Per layer: two LayerNorms, two residual adds, the casts between them, GELU, bias gradients."""
    a, r, c = w.act_bytes, w.resid_bytes, w.n_embd
    cast = (r + a) if r != a else 0
    drop = 1 if w.dropout else 0  # a one-byte mask per element
    if w.compile:  # add + LayerNorm + cast (+ dropout) fused: read x and branch, write x and normed
        yield Op("add + layernorm (fused)", "forward", 2 * 8.0 * n * c, 2 * n * c * (r + a + r + a + drop))
        yield Op("add + layernorm (fused)", "backward", 2 * 8.0 * n * c, 2 * n * c * (a + 3 * r + a + drop))
    else:
        yield Op("layernorm + cast", "forward", 2 * 8.0 * n * c, 2 * n * c * (2 * r + cast))
        yield Op("residual add", "forward", 2 * 1.0 * n * c, 2 * n * c * (r + a + r + (2 * a + drop if drop else 0)))
        yield Op("layernorm + cast", "backward", 2 * 8.0 * n * c, 2 * n * c * (cast + 3 * r))
        # the two branches' gradients summed (3r), then cast for the matmul below (cast), and dropout's backward
        yield Op("residual grad sum", "backward", 2 * 1.0 * n * c, 2 * n * c * (3 * r + cast + (2 * a + drop if drop else 0)))
    yield Op("gelu", "forward", 4 * 8.0 * n * c, 4 * n * c * 2 * a)
    yield Op("gelu", "backward", 4 * 12.0 * n * c, 4 * n * c * 3 * a)
    yield Op("bias grads", "backward", 9.0 * n * c, 9 * n * c * a)  # qkv 3C + proj C + fc 4C + proj C, summed over tokens


def _loss(w: Workload, n: int) -> Iterator[Op]:
    """Cross-entropy over n x V logits: gptbench casts them to fp32 first; compiled, the cast and softmax fuse."""
    a, v = w.act_bytes, w.vocab_size
    if w.compile:
        yield Op("cross-entropy (fused)", "forward", 5.0 * n * v, n * v * 2 * a)
        yield Op("cross-entropy (fused)", "backward", 3.0 * n * v, n * v * 2 * a)
        return
    lp = FP32 if w.weights == "fp32" else a  # log-probs: fp32 after gptbench's .float(); else the logits' dtype
    cast = (a + lp) if lp != a else 0
    yield Op("cross-entropy", "forward", 5.0 * n * v, n * v * (cast + 2 * lp))
    yield Op("cross-entropy", "backward", 3.0 * n * v, n * v * (lp + 3 * lp + cast))


def layer_ops(w: Workload) -> list[Op]:
    """The transformer blocks' operations of one micro-batch, all layers together."""
    n, c = w.micro_batch * w.seq_len, w.n_embd
    per_layer = [
        *_linear("qkv matmul", w, n, c, 3 * c),
        *_attention(w, n),
        *_linear("attn proj matmul", w, n, c, c),
        *_linear("mlp up matmul", w, n, c, 4 * c),
        *_linear("mlp down matmul", w, n, 4 * c, c),
        *_norms_and_residuals(w, n),
    ]
    return [replace(op, flops=op.flops * w.n_layer, bytes=op.bytes * w.n_layer) for op in per_layer]


def step_ops(w: Workload) -> list[Op]:
    """Every operation of one micro-batch's forward and backward (phase forward/backward), and the step's
    optimizer work (phase optimizer), with FLOPs and bytes; `project` turns them into time. With activation
    checkpointing the blocks' forward runs again inside backward."""
    n, c, v, a = w.micro_batch * w.seq_len, w.n_embd, w.vocab_size, w.act_bytes
    r, wb = w.resid_bytes, w.weight_bytes
    ops = layer_ops(w)
    if w.activation_checkpointing:
        ops += [replace(op, name=f"{op.name} (recomputed)", phase="backward") for op in ops if op.phase == "forward"]
    ops.append(Op("embeddings", "forward", 0.0, n * c * (wb + r) + w.block_size * c * wb))
    ops.append(Op("embedding grad", "backward", 0.0, v * c * wb + n * c * (r + 2 * wb)))  # zero-fill, then scatter-add
    ops.append(Op("final layernorm", "forward", 8.0 * n * c, n * c * (2 * r + ((r + a) if r != a else 0))))
    ops.append(Op("final layernorm", "backward", 8.0 * n * c, n * c * 4 * r))
    ops.extend(_linear("lm head matmul", w, n, c, v, unaligned=v % 64 != 0))
    ops.extend(_loss(w, n))
    if w.weights == "fp32" and w.dtype != "fp32":  # autocast re-casts each fp32 weight to bf16 every micro-batch
        ops.append(Op("autocast weight casts", "forward", 0.0, w.matmul_params * (FP32 + a)))
        ops.append(Op("weight grad casts", "backward", 0.0, w.matmul_params * (a + FP32)))
    return ops


def optimizer_ops(w: Workload) -> list[Op]:
    """Once per step: gradient accumulation, clipping (norm, then scale) and AdamW over every parameter."""
    p, wb = w.n_params, w.weight_bytes
    # Fused AdamW reads param, grad, m, v and writes param, m, v in one pass; the foreach and for-loop versions
    # run about a dozen elementwise passes (lerp, mul, addcmul, sqrt, div, addcdiv, decay): ~18 accesses.
    accesses = 7 if w.adamw == "fused" else 18
    ops = [
        Op("grad clip (norm + scale)", "optimizer", 3.0 * p, 3 * wb * p),
        Op("adamw", "optimizer", 12.0 * p, accesses * wb * p),
    ]
    if w.grad_accum > 1:  # later micro-batches add into .grad: read both, write one
        ops.append(Op("grad accumulation", "optimizer", 1.0 * p * (w.grad_accum - 1), 3 * wb * p * (w.grad_accum - 1)))
    return ops


def op_times_s(op: Op, peak_tflops: float, bandwidth_gbs: float, eff: Efficiencies) -> tuple[float, float]:
    """Seconds to do the op's FLOPs at the achievable peak, and to move its bytes at the achievable bandwidth."""
    matmul_eff = eff.matmul * (eff.unaligned if op.unaligned else 1.0)
    return op.flops / (peak_tflops * 1e12 * matmul_eff), op.bytes / (bandwidth_gbs * 1e9 * eff.memory)


def op_time_s(op: Op, peak_tflops: float, bandwidth_gbs: float, eff: Efficiencies) -> float:
    """Roofline: the slower of doing the FLOPs at the achievable peak and moving the bytes at achievable bandwidth."""
    return max(op_times_s(op, peak_tflops, bandwidth_gbs, eff))


def peak_for_workload(w: Workload, spec: GpuSpec) -> tuple[float, str]:
    """The dense peak the matmuls run at, and the precision it is for; fp16 stands in where bf16 is missing."""
    if w.dtype == "fp32":
        precision = "tf32" if w.tf32 else "fp32"
        peak = spec.peak_tflops("fp32", tf32=w.tf32)
    else:
        precision, peak = w.dtype, spec.peak_tflops(w.dtype, tf32=False)
    if peak is None:
        raise GptbenchError(f"{spec.name}: the spec table has no dense {precision} peak; cannot project (try --dtype fp16)")
    if spec.memory_bw_gbs is None:
        raise GptbenchError(f"{spec.name}: the spec table has no memory bandwidth; cannot project")
    return peak, precision


def weighted_ops(w: Workload) -> list[tuple[Op, float]]:
    """Each operation with how often it runs in one timed step: forward and backward once per micro-batch
    (forward also once per evaluation batch inside the timed interval), the optimizer once."""
    runs = {"forward": w.grad_accum + w.eval_forwards, "backward": float(w.grad_accum)}
    return [(op, runs[op.phase]) for op in step_ops(w)] + [(op, 1.0) for op in optimizer_ops(w)]


def project(w: Workload, spec: GpuSpec, eff: Efficiencies = EFFICIENCIES) -> Projection:
    """Projected tokens/s of `w` on one `spec` GPU, with the step's phases and a memory-fit estimate."""
    peak, _ = peak_for_workload(w, spec)
    bw = spec.memory_bw_gbs or 0.0
    phases = {"forward": 0.0, "backward": 0.0, "optimizer": 0.0}
    for op, runs in weighted_ops(w):
        phases[op.phase] += runs * op_time_s(op, peak, bw, eff)
    step_s = sum(phases.values())
    return Projection(
        gpu=spec.name,
        tokens_per_sec=w.tokens_per_step / step_s,
        step_time_s=step_s,
        matmul_tflops_peak=peak,
        phase_time_s=phases,
        memory_gb=memory_estimate_gb(w),
        memory_capacity_gb=spec.memory_gb,
    )
