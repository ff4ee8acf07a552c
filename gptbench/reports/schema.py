"""The report schema `gptbench.report/1` as dataclasses, with lossless JSON round trips.

Fields may be added within a schema version (readers ignore keys they do not know);
a field's meaning never changes within one.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

SCHEMA = "gptbench.report/1"
KNOWN_SCHEMAS = (SCHEMA,)


@dataclass
class CpuInfo:
    model: str | None = None
    cores: int | None = None  # logical CPUs of the machine (os.cpu_count)
    physical_cores: int | None = None  # physical cores of the measuring process's CPU set (no hyper-threads)
    usable_cpus: int | None = None  # logical CPUs in that process's CPU set (its affinity mask)


@dataclass
class Accelerator:
    kind: str = "cpu"  # cpu | cuda | mps
    name: str | None = None
    count: int = 0
    memory_gb: float | None = None
    driver: str | None = None
    capability: str | None = None  # CUDA compute capability, e.g. "9.0"


@dataclass
class Machine:
    hostname: str | None = None
    os: str | None = None
    python: str | None = None
    torch: str | None = None
    cuda: str | None = None
    cudnn: str | None = None
    triton: str | None = None
    cpu: CpuInfo = field(default_factory=CpuInfo)
    memory_gb: float | None = None
    accelerator: Accelerator = field(default_factory=Accelerator)
    allocator: str | None = None  # host malloc of the process that wrote the report: system | tcmalloc | jemalloc


@dataclass
class ModelSource:
    """Where a `--model-factory` model came from."""

    kind: str  # file | module
    source: str  # the file's absolute path, or the module's name
    function: str
    args: list[str] = field(default_factory=list)  # --model-arg key=value, as given
    sha256: str | None = None  # of the source file

    def describe(self) -> str:
        """`file /x/y.py:make_model(n_layer=4) sha256 1a2b3c4d5e6f`: what tells two factory models apart."""
        sha = f" sha256 {self.sha256[:12]}" if self.sha256 else ""
        return f"{self.kind} {self.source}:{self.function}({', '.join(self.args)}){sha}"


@dataclass
class ModelShape:
    preset: str
    n_layer: int
    n_head: int
    n_embd: int
    vocab_size: int
    block_size: int
    n_params: int
    # The book's GPTModel switches (added later: reports without them are GPT-2's, the defaults).
    tie_head: bool = True
    qkv_bias: bool = True
    dropout: float = 0.0
    # A --model-factory module (None: gptbench's GPT). n_layer, n_head, n_embd are then what the module exposes, 0
    # where it exposes none; preset is `factory:FILE:FUNCTION`.
    source: ModelSource | None = None


@dataclass
class RunConfig:
    model: ModelShape
    seq_len: int
    micro_batch: int
    grad_accum: int
    world_size: int
    tokens_per_step: int  # global: world_size * micro_batch * seq_len * grad_accum
    dtype: str  # fp32 | bf16 | fp16 (autocast)
    compile: bool
    attention: str  # sdpa | naive
    fused_adamw: bool
    tf32: bool
    data: str
    device: str | None = None
    adamw: str | None = None  # fused | foreach | for-loop
    warmup_steps: int | None = None
    steps: int | None = None
    allocator: str | None = None  # host malloc of the process that measured: system | tcmalloc | jemalloc
    threads: int | None = None  # torch intra-op threads during the measured steps
    # Added with issue 22; reports without them ran with neither.
    activation_checkpointing: bool = False  # each transformer block recomputed in backward (torch.utils.checkpoint)
    shard: str = "none"  # none (DDP or one process) | optimizer (ZeRO-1) | full (FSDP2)
    micro_batch_basis: str | None = None  # why this micro-batch where gptbench chose it (a CUDA GPU's memory); None: given
    # Added with issue 29; reports without them ran with the full logits, torch.compile's default mode, no FP8.
    loss: str = "standard"  # LM head + cross-entropy: standard (full logits) | chunked | liger | cce
    compile_mode: str = "default"  # torch.compile's mode, where compile is on
    fp8: bool = False  # the blocks' linear layers in FP8 (torchao float8 training), the rest in bf16

    @property
    def adamw_impl(self) -> str:
        """fused | foreach | for-loop; reports that predate `adamw` have only the `fused_adamw` flag."""
        return self.adamw or ("fused" if self.fused_adamw else "foreach")


@dataclass
class Memory:
    peak_allocated_gb: float | None = None  # torch's caching allocator (CUDA) or MPS's allocated
    peak_reserved_gb: float | None = None
    device_used_gb: float | None = None  # NVML: whole device in use, all processes
    host_peak_rss_gb: float | None = None  # this process's peak resident memory on the host


@dataclass
class Loss:
    first: float | None = None
    last: float | None = None
    all_finite: bool = True


@dataclass
class Telemetry:
    """What was sampled over the measured steps (gptbench/bench/telemetry.py). A null figure has its reason in
    `unavailable`, keyed by the field's name; power and energy are the sum over the `gpus` sampled."""

    samples: int = 0
    interval_s: float | None = None  # the sampling interval aimed at
    window_s: float | None = None  # first sample to last: the measured steps
    gpus: int = 0
    power_avg_w: float | None = None  # energy_j / window_s
    power_max_w: float | None = None  # the highest sample
    energy_j: float | None = None
    energy_source: str | None = None  # counter (NVML's energy counter) | integrated (power samples over time)
    joules_per_token: float | None = None  # energy_j / tokens processed in the measured steps
    sm_clock_mhz_min: float | None = None
    sm_clock_mhz_max: float | None = None
    mem_clock_mhz_min: float | None = None
    mem_clock_mhz_max: float | None = None
    temperature_c_min: float | None = None
    temperature_c_max: float | None = None
    utilization_gpu_avg: float | None = None  # 0-1 fraction of time a kernel ran (NVML)
    throttled: bool | None = None  # a clock limit that costs throughput was seen
    throttle_reasons: list[str] = field(default_factory=list)  # those limits: power cap, thermal slowdown (sw/hw), ...
    throttled_fraction: float | None = None  # share of samples with one of them
    other_clock_reasons: list[str] = field(default_factory=list)  # seen but costing nothing: gpu idle, clocks settings
    cpu_freq_mhz_avg: float | None = None
    cpu_load_avg: float | None = None  # 0-1 busy fraction of all CPUs over the window (/proc/stat)
    notes: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # null field -> why


@dataclass
class OtherProcess:
    pid: int
    name: str | None = None
    used_gb: float | None = None  # its GPU memory, where NVML may tell


@dataclass
class Contention:
    """What else used the device around the measured steps (gptbench/bench/contention.py). `busy` when any of it
    was enough to move the numbers; `warnings` say what, and `unavailable` why a null figure is null."""

    busy: bool = False
    other_gpu_processes: list[OtherProcess] = field(default_factory=list)  # compute processes on this GPU at the start
    gpu_utilization_before: float | None = None  # 0-1, NVML, before this run put work on the GPU
    load_avg_1m_before: float | None = None
    runnable_before: int | None = None  # runnable tasks other than this one, just before the measured steps
    cpus: int | None = None
    other_cpu_share: float | None = None  # 0-1 share of the CPU time below that other processes took in the measured steps
    cpu_basis: str | None = None  # whose CPU time: the CPUs of this process's CPU set, or its cgroup's CPU quota
    warnings: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)


@dataclass
class EpochLoss:
    """One evaluation of `gptbench chapter5`: mean loss over the first batches of each split, the model in eval mode."""

    epoch: int
    step: int  # optimizer steps before it, counted from 0 as the book's printout counts them
    tokens_seen: int
    train_loss: float
    val_loss: float


@dataclass
class Chapter5Result:
    """The book's chapter-5 run (gptbench/studies/chapter5.py): the whole run's wall clock, its losses and samples."""

    wall_s: float  # training, evaluations and the per-epoch samples, as the book's timer covers them
    train_tokens: int
    tokens_per_sec_wall: float  # train_tokens / wall_s: evaluation and sampling included
    epochs: int
    steps: int
    evals: list[EpochLoss] = field(default_factory=list)  # every eval_every steps
    epoch_losses: list[EpochLoss] = field(default_factory=list)  # the last evaluation in each epoch
    epoch_samples: list[str] = field(default_factory=list)  # greedy continuation after each epoch
    prompt: str = ""
    sample: str = ""  # the closing sample at `temperature` and `top_k`
    temperature: float | None = None
    top_k: int | None = None
    seed: int | None = None


# What a run's `status` may be. ok: measured in full. oom / error: failed (`error` says why). skipped: not run here
# (`error` says why). interrupted: a stop signal ended the measured steps early; its numbers cover the steps in
# step_times_s only (`error` says how many of how many), so readers never take them as a full measurement.
STATUSES = ("ok", "oom", "error", "skipped", "interrupted")


@dataclass
class RunResult:
    status: str = "ok"  # one of STATUSES
    error: str | None = None
    tokens_per_sec: float | None = None  # global, median over measured steps
    tokens_per_sec_p10: float | None = None
    tokens_per_sec_p90: float | None = None
    step_times_s: list[float] = field(default_factory=list)
    warmup_s: float | None = None
    flops_per_token: float | None = None
    flops_formula: str | None = None
    achieved_tflops: float | None = None
    peak_tflops: float | None = None
    peak_source: str | None = None
    mfu: float | None = None  # 0-1 fraction of peak_tflops
    mfu_note: str | None = None  # why mfu is null, when it is
    # With activation checkpointing the hardware also recomputes each block's forward: those FLOPs count here, never
    # in flops_per_token or mfu. Null when nothing is recomputed (HFU = MFU then).
    hardware_flops_per_token: float | None = None
    hardware_flops_formula: str | None = None
    hfu: float | None = None  # 0-1 fraction of peak_tflops, hardware FLOPs
    memory: Memory = field(default_factory=Memory)
    loss: Loss = field(default_factory=Loss)
    step_time_s: float | None = None  # median
    data_wait_fraction: float | None = None  # share of measured step time spent fetching batches
    measured_peak_tflops: float | None = None  # from `gptbench peak` on this machine, same precision
    mfu_measured: float | None = None  # achieved / measured peak: "% of achievable", a 0-1 fraction
    telemetry: Telemetry | None = None  # power, energy, clocks, throttling over the measured steps
    # Multi-process runs (DDP, gptbench/bench/distributed.py); tokens_per_sec above stays global.
    tokens_per_sec_per_rank: float | None = None  # tokens_per_sec / world_size: per GPU on CUDA (one rank each)
    rank_memory: list[Memory] = field(default_factory=list)  # every rank's peak memory, in rank order
    scaling_efficiency: float | None = None  # tokens_per_sec / (world_size x baseline_tokens_per_sec)
    baseline_tokens_per_sec: float | None = None  # the single-process run of the same configuration
    baseline_source: str | None = None  # where that run came from: a report file and run, or this invocation
    contention: Contention | None = None  # other processes on the GPU or CPUs around the measured steps
    notes: list[str] = field(default_factory=list)  # what the configuration's choices cost (emulated bf16, compile off, ...)
    chapter5: Chapter5Result | None = None  # `gptbench chapter5` only


@dataclass
class Run:
    config: RunConfig
    result: RunResult
    name: str | None = None  # a rung of `ablate` or a point of `sweep`


@dataclass
class MatmulPeak:
    dtype: str  # bf16 | fp16 | tf32 | fp32
    m: int
    n: int
    k: int
    tflops: float  # median over repeats, 2*m*n*k FLOPs each
    repeats: int


@dataclass
class MeasuredPeak:
    """What `gptbench peak` measured: achieved matmul TFLOP/s per precision and memory bandwidth."""

    device: str
    matmul: list[MatmulPeak] = field(default_factory=list)
    best_tflops: dict[str, float] = field(default_factory=dict)  # per precision, best shape
    bandwidth_gbs: float | None = None  # device-to-device copy, bytes read + written per second
    copy_bytes: int | None = None
    timing: str = ""  # how it was timed: CUDA events, or wall clock around a synchronisation


@dataclass
class Report:
    machine: Machine
    runs: list[Run] = field(default_factory=list)
    label: str | None = None
    peak: MeasuredPeak | None = None
    created: str = ""
    gptbench_version: str = ""
    schema: str = SCHEMA

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data, schema first."""
        data = dataclasses.asdict(self)
        return {"schema": data.pop("schema"), **data}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Report:
        """Build from parsed JSON of a known schema; unknown keys are ignored."""
        return build(cls, data)


T = TypeVar("T", bound="DataclassInstance")


def build(cls: type[T], data: object) -> T:
    """Recursively construct dataclass `cls` from dicts, by its type hints."""
    if not isinstance(data, dict):
        raise TypeError(f"expected an object for {cls.__name__}, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        if f.name in data:
            kwargs[f.name] = _convert(hints[f.name], data[f.name])
    return cls(**kwargs)


def _convert(hint: Any, value: Any) -> Any:  # Any: a typing hint (X | None, list[X], a dataclass) and a JSON value
    if value is None:
        return None
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # X | None
        (hint,) = [a for a in typing.get_args(hint) if a is not type(None)]
    if isinstance(hint, type) and dataclasses.is_dataclass(hint):
        return build(hint, value)
    if typing.get_origin(hint) is list:
        (item,) = typing.get_args(hint)
        return [_convert(item, v) for v in value]
    return value
