"""One frozen BenchConfig per run, resolved from the user's options and the device's sensible defaults."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch

from gptbench.bench.default_batch import device_memory_gb, memory_sized_batch
from gptbench.data.sources import DataSpec
from gptbench.errors import GptbenchError
from gptbench.hardware import allocator
from gptbench.hardware.capability import (
    autocast_problem,
    bf16_note,
    compile_problem,
    fp8_problem,
    loss_problem,
    native_tf32,
    supports_fused_adamw,
)
from gptbench.hardware.device import has_fast_bf16, resolve_device
from gptbench.hardware.threads import default_threads
from gptbench.model.blocks import HOW_TO_MARK
from gptbench.model.config import GPT2_VOCAB, GPTConfig
from gptbench.model.factory import ModelFactory, inspect_factory
from gptbench.model.loss import LOSSES

DTYPES = ("fp32", "bf16", "fp16")
ADAMW_IMPLS = ("fused", "foreach", "for-loop")
ATTENTIONS = ("sdpa", "naive")
RUN_ALLOCATORS = ("system", "tcmalloc", "jemalloc")
# none: every rank holds everything (DDP); optimizer: AdamW's moments split over ranks (ZeRO-1,
# ZeroRedundancyOptimizer); full: weights, gradients and moments split (FSDP2 fully_shard). The names are the memory
# model's (gptbench/predict/projection.py Workload.sharding).
SHARDS = ("none", "optimizer", "full")
# torch.compile's `mode`s (torch.compile docs): default; max-autotune-no-cudagraphs autotunes matmul and Triton
# templates; reduce-overhead records CUDA graphs (fewer launches); max-autotune does both.
COMPILE_MODES = ("default", "max-autotune-no-cudagraphs", "reduce-overhead", "max-autotune")
CUDA_GRAPH_MODES = ("reduce-overhead", "max-autotune")


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
    # --model-factory: the user's own module instead of gptbench's GPT. `model` then carries only its vocabulary and
    # context (its shape fields are placeholders); the factory holds what the module exposes.
    factory: ModelFactory | None = None
    allocator: str = "system"  # host malloc the run's process uses: system | tcmalloc | jemalloc (preloaded)
    threads: int | None = None  # torch intra-op threads; None: torch's own default (one per logical CPU)
    activation_checkpointing: bool = False  # each block keeps only its input and is recomputed in backward
    shard: str = "none"  # none | optimizer | full (SHARDS); anything but none needs a process group of 2 or more
    micro_batch_basis: str | None = None  # why this micro-batch, where gptbench chose it (a CUDA GPU's memory)
    loss: str = "standard"  # LM head + cross-entropy: standard (full logits) | chunked | liger | cce (model/loss.py)
    compile_mode: str = "default"  # torch.compile's mode (COMPILE_MODES); other than default it needs compile
    fp8: bool = False  # torchao float8 training: the blocks' linears in FP8 (CUDA sm89+), the rest in bf16

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
        if self.shard not in SHARDS:
            raise GptbenchError(f"--shard {self.shard}: choose one of {', '.join(SHARDS)}")
        if self.shard == "full" and self.dtype == "fp16":
            # fp16 needs a loss scaler whose inf check agrees across ranks that each hold a shard of the gradients;
            # gptbench wires none for FSDP2 (DDP and ZeRO-1 ranks hold whole gradients, so theirs agree).
            raise GptbenchError("--shard full with --dtype fp16: use --dtype bf16 or fp32, or --shard optimizer")
        self._check_blocks()
        self._check_frontier()

    def _check_frontier(self) -> None:
        """The loss, the compile mode and FP8: each refused here, before any work, where it cannot run."""
        device = self.torch_device
        if self.loss not in LOSSES:
            raise GptbenchError(f"--loss {self.loss}: choose one of {', '.join(LOSSES)}")
        if self.loss != "standard" and self.factory is not None:
            raise GptbenchError(f"--loss {self.loss}: a --model-factory module computes its own logits; use --loss standard")
        if problem := loss_problem(self.loss, device):
            raise GptbenchError(f"--loss {self.loss}: {problem}")
        if self.compile_mode not in COMPILE_MODES:
            raise GptbenchError(f"--compile-mode {self.compile_mode}: choose one of {', '.join(COMPILE_MODES)}")
        if self.compile_mode != "default" and not self.compile:
            raise GptbenchError(f"--compile-mode {self.compile_mode} is a mode of torch.compile: add --compile")
        if self.compile_mode in CUDA_GRAPH_MODES and device.type != "cuda":
            raise GptbenchError(
                f"--compile-mode {self.compile_mode} records CUDA graphs, which need a CUDA device (this run is on "
                f"{self.device}); use max-autotune-no-cudagraphs or default"
            )
        if not self.fp8:
            return
        if problem := fp8_problem(device):
            raise GptbenchError(f"--fp8: {problem}; drop --fp8")
        if self.dtype != "bf16":
            raise GptbenchError(f"--fp8 runs what is not FP8 in bf16: use --dtype bf16 (or auto), not {self.dtype}")

    def _check_blocks(self) -> None:
        """Checkpointing and FSDP2 work block by block: a factory module must mark its blocks (model/blocks.py)."""
        if self.factory is None or self.factory.n_blocks > 0:
            return
        asked = (("--activation-checkpointing", self.activation_checkpointing), ("--shard full", self.shard == "full"))
        wants = [flag for flag, on in asked if on]
        if wants:
            raise GptbenchError(
                f"{' and '.join(wants)}: --model-factory {self.factory.spec} returns a module with no transformer blocks "
                f"gptbench can find; {HOW_TO_MARK}"
            )

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
    vocab_pad: bool | None = None  # None: the preset's default (on for GPT-2, off for the book's 50257)
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
    model_factory: str | None = None  # path/to/file.py:fn or package.module:fn
    model_args: tuple[str, ...] = ()  # key=value for the factory
    vocab: int | None = None  # a factory model's vocabulary where the module does not expose it
    allocator: str = "auto"  # auto | system | tcmalloc | jemalloc
    threads: int | None = None  # None: the physical cores of this process's CPU set (CPU runs)
    activation_checkpointing: bool = False
    shard: str = "none"
    loss: str = "standard"
    compile_mode: str = "default"
    fp8: bool = False


# Per-device defaults: the fast path on a GPU; on a CPU, what finishes in minutes on two cores.
# CPU compile stays off: compiling costs far more than it saves over a default-length run
# (benchmarks/cpu_compile_payoff.py; figures in docs/run.md, "CPU runs: allocator, threads, compile").
DEVICE_DEFAULTS = {
    "cuda": {"micro_batch": 16, "compile": True, "warmup_steps": 3, "steps": 30},
    "mps": {"micro_batch": 4, "compile": False, "warmup_steps": 2, "steps": 10},
    "cpu": {"micro_batch": 1, "compile": False, "warmup_steps": 1, "steps": 8},
}


def resolve_config(opts: RunOptions) -> BenchConfig:
    """Turn options into a BenchConfig: pick the device, fill its defaults, and validate everything."""
    if opts.dtype is not None and opts.dtype not in DTYPES:
        raise GptbenchError(f"--dtype {opts.dtype}: choose one of auto, {', '.join(DTYPES)}")
    factory = None
    if opts.model_factory is not None:
        model, factory = factory_model(opts)
    else:
        model = GPTConfig.from_name(opts.model, n_layer=opts.n_layer, n_head=opts.n_head, n_embd=opts.n_embd)
    if factory is None and (opts.vocab_pad if opts.vocab_pad is not None else model.pads_by_default):
        model = model.padded()
    device = resolve_device(opts.device)
    defaults = DEVICE_DEFAULTS[device.type]
    dtype = opts.dtype or _default_dtype(device)
    if device.type == "mps" and (problem := autocast_problem(device, dtype)):
        raise GptbenchError(f"--dtype {dtype}: {problem}; use --dtype fp32 (or auto)")
    seq_len = opts.seq_len if opts.seq_len is not None else model.block_size
    compile = _pick(opts.compile, bool(defaults["compile"]) and compile_problem(device) is None)
    adamw = _resolve_adamw(opts.adamw, device)
    micro_batch, basis = _pick(opts.micro_batch, defaults["micro_batch"]), None
    if opts.micro_batch is None and device.type == "cuda" and factory is None:
        how = (dtype, compile, opts.attention, adamw, opts.activation_checkpointing)
        micro_batch, basis = memory_sized_batch(model, seq_len, *how, device_memory_gb(device))
    return BenchConfig(
        model=model,
        device=str(device),
        seq_len=seq_len,
        micro_batch=micro_batch,
        micro_batch_basis=basis,
        grad_accum=opts.grad_accum,
        dtype=dtype,
        compile=compile,
        attention=opts.attention,
        adamw=adamw,
        tf32=_pick(opts.tf32, native_tf32(device)),  # pre-Ampere GPUs have no TF32: their fp32 runs use the fp32 peak
        data=DataSpec.parse(opts.data),
        warmup_steps=_pick(opts.warmup_steps, defaults["warmup_steps"]),
        steps=_pick(opts.steps, defaults["steps"]),
        lr=opts.lr,
        seed=opts.seed,
        factory=factory,
        allocator=resolve_allocator(opts.allocator, device.type == "cpu"),
        threads=opts.threads if opts.threads is not None else default_threads() if device.type == "cpu" else None,
        activation_checkpointing=opts.activation_checkpointing,
        shard=opts.shard,
        loss=opts.loss,
        compile_mode=opts.compile_mode,
        fp8=opts.fp8,
    )


def factory_model(opts: RunOptions) -> tuple[GPTConfig, ModelFactory]:
    """The vocabulary and context of a --model-factory module (its own where it exposes them, else --vocab and
    --seq), as a placeholder GPTConfig, and the resolved factory."""
    if any(v is not None for v in (opts.n_layer, opts.n_head, opts.n_embd)):
        raise GptbenchError("--n-layer/--n-head/--n-embd shape gptbench's presets; pass a factory's shape as --model-arg")
    factory, vocab, context = inspect_factory(opts.model_factory or "", tuple(opts.model_args))  # set: the caller checks
    vocab = vocab or opts.vocab or GPT2_VOCAB
    context = context or opts.seq_len
    if context is None:
        raise GptbenchError(f"--model-factory {opts.model_factory}: the module exposes no context length; pass --seq")
    if vocab < GPT2_VOCAB and opts.data not in (None, "synthetic"):
        raise GptbenchError(
            f"--model-factory: the model's vocabulary ({vocab}) is smaller than GPT-2's {GPT2_VOCAB}, which --data is "
            "tokenized with; use --data synthetic"
        )
    return GPTConfig(n_layer=1, n_head=1, n_embd=1, vocab_size=vocab, block_size=context, preset=factory.name), factory


def resolve_allocator(choice: str, cpu_run: bool) -> str:
    """`--allocator` -> the allocator the run uses (hardware/allocator.py decides; a missing explicit one is an error)."""
    in_use, _ = allocator.allocator_in_use()
    return allocator.plan_allocator(choice, cpu_run, os.environ, in_use, allocator.installed()).allocator


T = TypeVar("T")


def _pick(value: T | None, default: T) -> T:
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


def config_notes(config: BenchConfig) -> list[str]:
    """What a reader of the numbers should know about this configuration on its device (kept in the report)."""
    device = config.torch_device
    notes = [config.micro_batch_basis] if config.micro_batch_basis else []
    if config.dtype == "bf16" and (note := bf16_note(device)):
        notes.append(note)
    if device.type == "cuda" and not config.compile and (problem := compile_problem(device)):
        notes.append(f"torch.compile is off (it is on by default where it works): {problem}")
    if config.fp8:
        notes.append("FP8 matmuls (torchao float8 training): MFU is against the GPU's dense bf16 peak, as for bf16 runs")
    if config.tf32 and device.type == "cuda" and not native_tf32(device):
        notes.append("--tf32 has no effect on this GPU (TF32 needs Ampere, sm80, or newer): fp32 matmuls run in plain fp32")
    return notes


def config_to_dict(config: BenchConfig) -> dict[str, Any]:
    """Plain data for a BenchConfig, to hand it to a worker process."""
    return dataclasses.asdict(config)


def config_from_dict(data: dict[str, Any]) -> BenchConfig:
    """The BenchConfig that `config_to_dict` described (validated again on construction)."""
    factory = data.get("factory")
    if factory is not None:
        factory = ModelFactory(**{**factory, "args": tuple(factory["args"])})
    return BenchConfig(**{**data, "model": GPTConfig(**data["model"]), "data": DataSpec(**data["data"]), "factory": factory})
