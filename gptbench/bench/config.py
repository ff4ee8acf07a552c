"""One frozen BenchConfig per run, resolved from the user's options and the device's sensible defaults."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field

import torch

from gptbench.bench import allocator
from gptbench.bench.device import has_fast_bf16, resolve_device, supports_fused_adamw
from gptbench.bench.threads import default_threads
from gptbench.data.sources import DataSpec
from gptbench.errors import GptbenchError
from gptbench.model.config import GPTConfig

DTYPES = ("fp32", "bf16", "fp16")
ADAMW_IMPLS = ("fused", "foreach", "for-loop")
ATTENTIONS = ("sdpa", "naive")
RUN_ALLOCATORS = ("system", "tcmalloc", "jemalloc")


@dataclass(frozen=True)
class BenchConfig:
    """Everything that defines one measured run; invalid combinations are refused on construction."""

    model: GPTConfig
    device: str  # resolved: cpu, cuda:N or mps
    seq_len: int
    micro_batch: int
    grad_accum: int = 1
    dtype: str = "fp32"  # autocast dtype; fp16 adds a gradient scaler
    compile: bool = False
    attention: str = "sdpa"
    adamw: str = "foreach"
    tf32: bool = False  # fp32 matmuls on tensor cores (CUDA only)
    data: DataSpec = field(default_factory=DataSpec)
    warmup_steps: int = 2  # timed apart: compilation and allocator warm-up live here
    steps: int = 10  # measured optimizer steps
    lr: float = 6e-4  # GPT-2 small's peak learning rate
    seed: int = 1337
    world_size: int = 1
    allocator: str = "system"  # host malloc the run's process uses: system | tcmalloc | jemalloc (preloaded)
    threads: int | None = None  # torch intra-op threads; None: torch's own default (one per logical CPU)

    def __post_init__(self) -> None:
        for name in ("seq_len", "micro_batch", "grad_accum", "steps", "world_size"):
            if getattr(self, name) <= 0:
                raise GptbenchError(f"--{_flag(name)} must be a positive whole number, got {getattr(self, name)}")
        if self.warmup_steps < 0:
            raise GptbenchError(f"--warmup must be 0 or more, got {self.warmup_steps}")
        if self.seq_len > self.model.block_size:
            raise GptbenchError(
                f"--seq {self.seq_len} is longer than the model's {self.model.block_size} positions "
                f"(preset {self.model.preset}); use --seq {self.model.block_size} or less"
            )
        if self.dtype not in DTYPES:
            raise GptbenchError(f"--dtype {self.dtype}: choose one of {', '.join(DTYPES)} (or auto)")
        if self.attention not in ATTENTIONS:
            raise GptbenchError(f"--attention {self.attention}: choose one of {', '.join(ATTENTIONS)}")
        if self.adamw not in ADAMW_IMPLS:
            raise GptbenchError(f"--adamw {self.adamw}: choose one of {', '.join(ADAMW_IMPLS)} (or auto)")
        if self.tf32 and not self.device.startswith("cuda"):
            raise GptbenchError(f"--tf32 needs a CUDA device (this run is on {self.device}); drop --tf32")
        if not self.lr > 0:
            raise GptbenchError(f"--lr must be positive, got {self.lr}")
        if self.allocator not in RUN_ALLOCATORS:
            raise GptbenchError(f"--allocator {self.allocator}: choose one of auto, {', '.join(RUN_ALLOCATORS)}")
        if self.threads is not None and self.threads <= 0:
            raise GptbenchError(f"--threads must be a positive whole number, got {self.threads}")

    @property
    def tokens_per_step(self) -> int:
        """Tokens in one optimizer step across all ranks."""
        return self.world_size * self.micro_batch * self.seq_len * self.grad_accum

    @property
    def torch_device(self) -> torch.device:
        return torch.device(self.device)


def _flag(name: str) -> str:
    return {"seq_len": "seq", "micro_batch": "batch", "grad_accum": "grad-accum"}.get(name, name.replace("_", "-"))


@dataclass(frozen=True)
class RunOptions:
    """The user's choices as given; None means 'the default for this device'."""

    device: str = "auto"
    model: str = "124m"
    n_layer: int | None = None
    n_head: int | None = None
    n_embd: int | None = None
    vocab_pad: bool = True
    seq_len: int | None = None
    micro_batch: int | None = None
    grad_accum: int = 1
    dtype: str | None = None
    compile: bool | None = None
    attention: str = "sdpa"
    adamw: str | None = None
    tf32: bool | None = None
    data: str | None = None
    warmup_steps: int | None = None
    steps: int | None = None
    lr: float = 6e-4
    seed: int = 1337
    allocator: str = "auto"  # auto | system | tcmalloc | jemalloc
    threads: int | None = None  # None: the physical cores of this process's CPU set (CPU runs)


# Per-device defaults: the fast path on a GPU; on a CPU, what finishes in minutes on two cores.
# CPU compile stays off: compiling costs far more than it saves over a default-length run
# (benchmarks/cpu_compile_payoff.py; figures in the README, "CPU runs: allocator, threads, compile").
DEVICE_DEFAULTS = {
    "cuda": {"micro_batch": 16, "compile": True, "warmup_steps": 3, "steps": 30},
    "mps": {"micro_batch": 4, "compile": False, "warmup_steps": 2, "steps": 10},
    "cpu": {"micro_batch": 1, "compile": False, "warmup_steps": 1, "steps": 8},
}


def resolve_config(opts: RunOptions) -> BenchConfig:
    """Turn options into a BenchConfig: pick the device, fill its defaults, and validate everything."""
    if opts.dtype is not None and opts.dtype not in DTYPES:
        raise GptbenchError(f"--dtype {opts.dtype}: choose one of auto, {', '.join(DTYPES)}")
    model = GPTConfig.from_name(opts.model, n_layer=opts.n_layer, n_head=opts.n_head, n_embd=opts.n_embd)
    if opts.vocab_pad:
        model = model.padded()
    device = resolve_device(opts.device)
    defaults = DEVICE_DEFAULTS[device.type]
    dtype = opts.dtype or _default_dtype(device)
    if dtype == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise GptbenchError(f"--dtype bf16: {torch.cuda.get_device_name(device)} has no bf16 support; use --dtype fp16")
    return BenchConfig(
        model=model,
        device=str(device),
        seq_len=opts.seq_len if opts.seq_len is not None else model.block_size,
        micro_batch=_pick(opts.micro_batch, defaults["micro_batch"]),
        grad_accum=opts.grad_accum,
        dtype=dtype,
        compile=_pick(opts.compile, defaults["compile"]),
        attention=opts.attention,
        adamw=_resolve_adamw(opts.adamw, device),
        tf32=_pick(opts.tf32, device.type == "cuda"),
        data=DataSpec.parse(opts.data),
        warmup_steps=_pick(opts.warmup_steps, defaults["warmup_steps"]),
        steps=_pick(opts.steps, defaults["steps"]),
        lr=opts.lr,
        seed=opts.seed,
        allocator=resolve_allocator(opts.allocator, device.type == "cpu"),
        threads=opts.threads if opts.threads is not None else default_threads() if device.type == "cpu" else None,
    )


def resolve_allocator(choice: str, cpu_run: bool) -> str:
    """`--allocator` -> the allocator the run uses (gptbench/bench/allocator.py decides; a missing explicit one is an error)."""
    in_use, _ = allocator.allocator_in_use()
    return allocator.plan_allocator(choice, cpu_run, os.environ, in_use, allocator.installed()).allocator


def _pick(value, default):  # noqa: ANN001, ANN202 - tiny helper over ints and bools
    return default if value is None else value


def _default_dtype(device: torch.device) -> str:
    if device.type == "cuda":
        return "bf16" if has_fast_bf16(device) else "fp16"
    return "bf16" if has_fast_bf16(device) else "fp32"


def _resolve_adamw(choice: str | None, device: torch.device) -> str:
    if choice in (None, "auto"):
        return "fused" if supports_fused_adamw(device) else "foreach"
    if choice == "fused" and not supports_fused_adamw(device):
        raise GptbenchError(f"--adamw fused: torch {torch.__version__} has no fused AdamW for {device.type}; use --adamw foreach")
    return choice


def config_to_dict(config: BenchConfig) -> dict:
    """Plain data for a BenchConfig, to hand it to a worker process."""
    return dataclasses.asdict(config)


def config_from_dict(data: dict) -> BenchConfig:
    """The BenchConfig that `config_to_dict` described (validated again on construction)."""
    return BenchConfig(**{**data, "model": GPTConfig(**data["model"]), "data": DataSpec(**data["data"])})
