"""Multi-GPU scaling from a model, not a constant: how much of a data-parallel step the gradient communication adds.

DDP all-reduces the gradients once per optimizer step (the micro-batches before the last skip the sync, as
nanoGPT and gptbench's trainer do), in buckets that overlap the last micro-batch's backward; only the last bucket's
all-reduce waits after backward, unless the whole all-reduce takes longer than that backward. A ring all-reduce of G
bytes moves 2 x G x (n-1)/n through each GPU's link (NCCL's "bus bandwidth" convention, nccl-tests
doc/PERFORMANCE.md). Sharded optimizer state (ZeRO-1: torch's ZeroRedundancyOptimizer under DDP) keeps DDP's
all-reduce and then sends each rank's updated weights to the others after the optimizer ((n-1)/n x G more, not
overlapped); FSDP gathers every block's weights (fp32: bench/sharding.py sets no mixed-precision policy) in forward
and again in backward and reduce-scatters the gradients, every micro-batch, overlapped with that micro-batch's compute.

What the link cannot explain (Python, hooks, bucket copies, torch.compile's graph splits under DDP) is one fitted
factor, DDP_FACTOR, fitted on published multi-GPU points where one program was measured on 1 and on N GPUs of one
machine kind: an efficiency that divides one program's N-GPU rate by another program's 1-GPU rate measures the two
programs' difference, not the scaling (llm.c's 8-GPU nodes over a PyTorch script's one GPU came out at 1.045 and 1.011,
more than linear), and a projected 1-GPU figure measures the projection. One such point is all that was found, so
leave-one-out cannot run: every multi-GPU figure is labelled not validated and its band is twice the single-GPU
bound in log terms. Never imports torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from gptbench.hardware.specs import GpuSpec, find_gpu
from gptbench.predict.projection import project
from gptbench.predict.validation import EXTRAPOLATION_WIDTH, HELD_OUT_BOUND
from gptbench.predict.workload import Workload

GPUS_PER_NODE = 8  # every multi-GPU offer in prices.csv is one node of at most 8 GPUs (HGX/DGX boards hold 8)
# NCCL reaches about 2/3 of the datasheet's per-direction NVLink figure: all_reduce busbw ~200 GB/s of 300 GB/s on
# 8x A100 80GB SXM (NVIDIA/nccl-tests issue #149, 2023-06-27, https://github.com/NVIDIA/nccl-tests/issues/149).
# Applied to every link (PCIe included): an assumption where no such measurement is cited.
LINK_EFFICIENCY = 0.67
# Between nodes: all_reduce busbw 84.8 GB/s measured over 3 nodes of 8x A100 with 4x 200 Gb/s HDR InfiniBand each
# (NVIDIA/nccl-tests issue #119, 2022-11-17, https://github.com/NVIDIA/nccl-tests/issues/119): assumed for any run
# over more than GPUS_PER_NODE GPUs; a slower network makes it slower.
NETWORK_BUSBW_GBS = 84.8
NETWORK_SOURCE = "nccl-tests #119 (2022-11-17): 84.8 GB/s all_reduce busbw, 8x A100 nodes with 4x HDR InfiniBand"
DDP_BUCKET_BYTES = 25 * 1024**2  # DistributedDataParallel(bucket_cap_mb=25), PyTorch's default


@dataclass(frozen=True)
class ScalingPoint:
    """One published multi-GPU measurement, with the single-GPU figure its efficiency is measured against."""

    name: str
    gpu: str  # a gpus.csv name
    gpus: int
    workload: Workload  # per GPU
    tokens_per_sec: float  # measured, all GPUs together
    single_tokens_per_sec: float  # one GPU of the same kind, same per-GPU configuration
    single_basis: str  # where the single-GPU figure comes from
    source: str

    @property
    def efficiency(self) -> float:
        """Measured scaling efficiency: the node's rate over n times one GPU's."""
        return self.tokens_per_sec / (self.gpus * self.single_tokens_per_sec)

    def __post_init__(self) -> None:
        if self.efficiency > 1:  # data parallelism adds communication to each GPU's step; it never removes work
            raise ValueError(f"{self.name}: efficiency {self.efficiency:.3f} > 1: the 1-GPU figure is not the same program's")
        if not self.single_basis.startswith("measured"):
            raise ValueError(f"{self.name}: the 1-GPU figure must be measured with the same program, not {self.single_basis!r}")


SCALING_POINTS: tuple[ScalingPoint, ...] = (
    ScalingPoint(
        "raschka-4xa100",
        "a100-sxm4-40gb",
        4,
        Workload(12, 12, 768, 50304, 1024, 32, weights="bf16", tied_head=False, dropout=True, eval_forwards=0.2),
        419_259,
        142_156,
        "measured, same README, same program: 01_opt_single_gpu.py on one A100 at batch 32, and on 4 A100s "
        "02_opt_multi_gpu_dpp.py, that script with its DDP changes marked '# NEW' (same model, loop, batch 32 per GPU)",
        "S. Raschka, LLMs-from-scratch ch05/10_llm-training-speed/README.md 'Multi-GPU speed comparisons': 142,156 tok/s "
        "on one A100, 419,259 on 4 (torchrun --nproc_per_node=4 02_opt_multi_gpu_dpp.py); rasbt/LLMs-from-scratch@"
        "06361583d01a (2025-02-12 PR #525); A100 variant not stated (a Lambda host), modelled as SXM4 40GB",
    ),
)
# Refused (issue 26), each for a reason a test keeps out: llm.c on 8x A100 80GB SXM (524,288 tokens per ~300 ms step,
# karpathy/llm.c scripts/run_gpt2_124M.sh@039904ee9fb9) and on 8x H100 SXM (139 ms median, KellerJordan/modded-nanogpt
# records/101324_llmc/README.md) had only the RunPod PyTorch script's one-GPU figures beside them (efficiency 1.045
# and 1.011: another program); nanoGPT issue #110's 8x A100 run (562 ms per 491,520 tokens) had only a one-GPU figure
# projected by this model. Searched on 2026-12-06 with the project's search tool, without finding another same-program
# pair for GPT-2: llm.c's and nanoGPT's issues and scripts, the book's DDP appendix (the pair above), torchtitan's
# docs/performance.md (Llama 3.1 8B and larger under FSDP on 8 to 512 H100s: no 1-GPU run, another model). Not read:
# the PyTorch DDP paper (Li et al., VLDB 2020), whose scaling results are for ResNet-50 and BERT. A 2-GPU GPT-2 pair
# on TITAN RTX in huggingface/transformers issue #9371 (2021-01) waits for a gpus.csv row for that card.


@dataclass(frozen=True)
class Interconnect:
    """The link a collective runs over, and the bus bandwidth NCCL reaches on it."""

    name: str
    busbw_gbs: float
    basis: str


def interconnect(spec: GpuSpec, gpus: int) -> Interconnect | None:
    """The link an all-reduce over `gpus` GPUs of `spec` is bound by; None when the spec table has no link figure."""
    if gpus > GPUS_PER_NODE:
        return Interconnect(f"network between nodes ({math.ceil(gpus / GPUS_PER_NODE)} nodes)", NETWORK_BUSBW_GBS, NETWORK_SOURCE)
    if not spec.link_bw_gbs:
        return None
    basis = f"{spec.link_bw_gbs:g} GB/s per direction ({spec.link_source or spec.source}) x {LINK_EFFICIENCY} reached by NCCL"
    return Interconnect(spec.link, spec.link_bw_gbs * LINK_EFFICIENCY, basis)


@dataclass(frozen=True)
class StepPhases:
    """One GPU's step, split as the overlap needs it (seconds): forward + backward of one micro-batch, its backward."""

    step_s: float  # the whole single-GPU step: every micro-batch and the optimizer
    micro_batch_s: float
    backward_s: float


def phases_for(w: Workload, spec: GpuSpec, single_tokens_per_sec: float | None = None) -> StepPhases:
    """The projected step on one GPU, its times scaled to a measured single-GPU rate where one is given. Activation
    checkpointing's recomputed block forwards are in `project`'s backward phase already (projection.step_ops)."""
    p = project(w, spec)
    step = p.step_time_s
    scale = 1.0 if single_tokens_per_sec is None else (w.tokens_per_step / single_tokens_per_sec) / step
    backward = p.phase_time_s["backward"] / w.grad_accum
    micro = (p.phase_time_s["forward"] + p.phase_time_s["backward"]) / w.grad_accum
    return StepPhases(step * scale, micro * scale, backward * scale)


def exposed_comm_s(w: Workload, gpus: int, link: Interconnect, phases: StepPhases) -> float:
    """Seconds per optimizer step that communication adds to the single-GPU step on `gpus` GPUs."""
    if gpus == 1:
        return 0.0
    share, bw = (gpus - 1) / gpus, link.busbw_gbs * 1e9
    grads = w.n_params * w.weight_bytes  # DDP reduces the gradients in the parameters' dtype
    if w.sharding == "full":  # per micro-batch: gather the weights twice, reduce-scatter the gradients
        per_micro = share * w.n_params * 3 * w.weight_bytes / bw  # in the weights' dtype: no mixed-precision policy
        first_block = share * w.block_params * w.weight_bytes / bw  # nothing to overlap the first gather with
        return w.grad_accum * (max(0.0, per_micro - phases.micro_batch_s) + first_block)
    all_reduce = 2 * share * grads / bw
    last_bucket = 2 * share * min(grads, DDP_BUCKET_BYTES) / bw
    exposed = max(last_bucket, all_reduce - phases.backward_s)
    if w.sharding == "optimizer":  # the updated weights' all-gather follows the optimizer step
        exposed += share * grads / bw
    return exposed


def link_efficiency(w: Workload, gpus: int, link: Interconnect, phases: StepPhases) -> float:
    """The share of linear scaling the link model leaves: step / (step + exposed communication)."""
    return phases.step_s / (phases.step_s + exposed_comm_s(w, gpus, link, phases))


def fit_factor(ratios: Sequence[float]) -> float:
    """DDP_FACTOR from measured / link-model efficiencies: their geometric mean, at most 1 (DDP never speeds a GPU up)."""
    return min(1.0, math.exp(sum(math.log(r) for r in ratios) / len(ratios)))


def modelled_efficiency(w: Workload, spec: GpuSpec, gpus: int, phases: StepPhases, factor: float | None = None) -> float:
    """Scaling efficiency on `gpus` GPUs: DDP_FACTOR (or `factor`) x the link model's share; 1 on one GPU."""
    if gpus == 1:
        return 1.0
    link = interconnect(spec, gpus)
    if link is None:
        return factor or DDP_FACTOR
    return (DDP_FACTOR if factor is None else factor) * link_efficiency(w, gpus, link, phases)


def point_ratios(points: Sequence[ScalingPoint] = SCALING_POINTS) -> list[float]:
    """Per point: measured efficiency / the link model's (what DDP_FACTOR must explain)."""
    ratios = []
    for point in points:
        spec = find_gpu(point.gpu)
        link = interconnect(spec, point.gpus)
        assert link is not None, point.gpu
        phases = phases_for(point.workload, spec, point.single_tokens_per_sec)
        ratios.append(point.efficiency / link_efficiency(point.workload, point.gpus, link, phases))
    return ratios


def leave_one_out_errors(points: Sequence[ScalingPoint] = SCALING_POINTS) -> list[tuple[str, float]]:
    """Each point's node rate predicted with DDP_FACTOR fitted on the others: (name, ln(predicted / measured)), the
    symmetric error the single-GPU projection's band uses (predict/validation.py); [] with fewer than two points."""
    if len(points) < 2:
        return []
    ratios = point_ratios(points)
    errors = []
    for i, point in enumerate(points):
        factor = fit_factor([r for j, r in enumerate(ratios) if j != i])
        errors.append((point.name, math.log(factor / ratios[i])))
    return errors


# Fitted by tests/test_plan.py's `point_ratios` over SCALING_POINTS (the test refits and fails if this drifts).
DDP_FACTOR = 0.74
# Leave-one-out errors (each point predicted with the factor fitted on the others; ln(predicted / measured)), as the
# same test recomputes them: none while one point is all there is. The bound they would be held to is the single-GPU
# projection's, chosen before any point was fitted (validation.HELD_OUT_BOUND, ln 1.5).
SCALING_LEAVE_ONE_OUT: tuple[tuple[str, float], ...] = ()
SCALING_BOUND = HELD_OUT_BOUND
# Without held-out errors the band is an allowance, as for a GPU with no measured relative: twice the bound in log
# terms (validation.EXTRAPOLATION_WIDTH), x0.44 to x2.25 on a modelled multi-GPU rate. It narrows to the held-out
# errors once there are at least MIN_VALIDATED same-program points.
UNVALIDATED_WIDTH = EXTRAPOLATION_WIDTH
MIN_VALIDATED = 3


def validated() -> bool:
    """Whether the scaling model has enough same-program points held out to stand on its own errors."""
    return len(SCALING_LEAVE_ONE_OUT) >= MIN_VALIDATED


def scaling_band(efficiency: float | None = None) -> tuple[float, float]:
    """Factors on a modelled multi-GPU rate: the leave-one-out errors' span once validated, else the allowance; the
    fast end never past linear scaling (1 / `efficiency`, where given)."""
    if not validated():
        low, high = math.exp(-UNVALIDATED_WIDTH), math.exp(UNVALIDATED_WIDTH)
    else:
        errors = [e for _, e in SCALING_LEAVE_ONE_OUT]
        low, high = math.exp(-max(errors)), math.exp(-min(errors))
    return low, high if not efficiency else min(high, 1 / efficiency)


def scaling_evidence(spec: GpuSpec | None, gpus: int) -> str:
    """What backs a modelled efficiency on this GPU and count, in a line: the points, and whether it is validated."""
    low, high = scaling_band()
    names = ", ".join(p.name for p in SCALING_POINTS)
    points = f"DDP_FACTOR {DDP_FACTOR} from {len(SCALING_POINTS)} same-program multi-GPU point(s) ({names})"
    if not validated():
        return f"scaling: not validated ({points}; too few to hold out; band ×{low:.2f} to ×{high:.2f})"
    span = f"leave-one-out ×{1 / high:.2f} to ×{1 / low:.2f} over {len(SCALING_LEAVE_ONE_OUT)} points"
    own = [p.name for p in SCALING_POINTS if spec is not None and p.gpu == spec.name]
    if gpus > GPUS_PER_NODE:
        return f"scaling: link model across nodes, not validated (points are single nodes; {span})"
    if own:
        return f"scaling: validated ({', '.join(own)} on this GPU; {span})"
    if spec is not None and ("nvlink" in spec.link or "nvswitch" in spec.link):
        return f"scaling: NVLink node like the validated points, not validated on this GPU ({span})"
    return f"scaling: {spec.link if spec else 'unknown link'} link model, not validated (every point is an NVLink node; {span})"


def scaling_model_line() -> str:
    """The scaling model in one line, for the assumptions under an estimate or a plan."""
    low, high = scaling_band()
    how = "not validated" if not validated() else f"leave-one-out within ×{math.exp(SCALING_BOUND):.1f} either way"
    return (
        f"gradient all-reduce over the link (spec table) overlapped with backward, × DDP_FACTOR {DDP_FACTOR} fitted on "
        f"{len(SCALING_POINTS)} published point(s) of one program on 1 and N GPUs ({how}; band ×{low:.2f} to ×{high:.2f})"
    )
