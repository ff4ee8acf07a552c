"""`gptbench ablate`: the optimization ladder. Each rung adds one change to the one before, on this machine."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch

from gptbench.bench.config import BenchConfig
from gptbench.hardware.allocator import INSTALL_HINT, find_library
from gptbench.hardware.capability import (
    autocast_problem,
    compile_probe,
    compile_problem,
    fp8_problem,
    native_bf16,
    native_tf32,
    supports_fused_adamw,
)
from gptbench.hardware.device import has_fast_bf16
from gptbench.hardware.threads import default_threads, physical_cores
from gptbench.model.config import GPT2_VOCAB, PADDED_VOCAB
from gptbench.studies.series import SeriesItem

if TYPE_CHECKING:
    from gptbench.predict.workload import Workload


@dataclass(frozen=True)
class Rung:
    name: str
    change: Callable[[BenchConfig], BenchConfig]
    skip_reason: Callable[[torch.device], str | None]  # why the rung is skipped on this device; None: it runs
    # None when the rungs below left what this one builds on (compile, bf16), else why it is skipped
    needs: Callable[[BenchConfig], str | None] = lambda _: None


def _never_skipped(_: torch.device) -> None:
    return None


def _tf32(device: torch.device) -> str | None:
    if device.type != "cuda":
        return f"TF32 is a mode of NVIDIA tensor cores; this run is on {device.type.upper()}"
    if not native_tf32(device):
        return "TF32 needs an Ampere (sm80) or newer GPU"
    return None


def _fused(device: torch.device) -> str | None:
    return None if supports_fused_adamw(device) else f"torch {torch.__version__} has no fused AdamW for {device.type}"


def _bf16(device: torch.device) -> str | None:
    if device.type == "cuda" and not native_bf16(device):
        return "this GPU has no bf16 tensor cores (sm80 or newer): torch would emulate bf16, slower than fp32"
    if device.type == "cpu" and not has_fast_bf16(device):
        return "this CPU has no fast bf16 (AVX512-BF16 or AMX); bf16 autocast would only add casts"
    if device.type == "mps":
        return autocast_problem(device, "bf16")
    return None


def _compile(device: torch.device) -> str | None:
    # MPS has an Inductor backend only in newer torch: try it. Elsewhere the checks need no compilation.
    return compile_probe(device) if device.type == "mps" else compile_problem(device)


def _cuda_kernels(device: torch.device) -> str | None:
    if device.type != "cuda":
        return (
            f"the compile modes tune GPU kernels and record CUDA graphs; this run is on {device.type.upper()} "
            "(run --compile --compile-mode max-autotune-no-cudagraphs alone to try it there)"
        )
    return None


def _compiled(config: BenchConfig) -> str | None:
    return None if config.compile else "torch.compile is off at this rung (its own rung was skipped)"


def _in_bf16(config: BenchConfig) -> str | None:
    return None if config.dtype == "bf16" else f"FP8 training keeps the rest in bf16, and this rung runs {config.dtype}"


# The frontier (issue 29): the loss without the full logits, FP8 matmuls, then the compile modes, each on top of the
# plain trainer's best. The two compile modes build on each other: max-autotune is max-autotune-no-cudagraphs with
# CUDA graphs (torch.compile docs); reduce-overhead (CUDA graphs alone) is `run --compile-mode reduce-overhead`.
FRONTIER: tuple[Rung, ...] = (
    Rung("+ chunked LM head + cross-entropy", lambda c: replace(c, loss="chunked"), _never_skipped),
    Rung("+ FP8 linear layers (torchao)", lambda c: replace(c, fp8=True), fp8_problem, _in_bf16),
    Rung("+ autotuned kernels (max-autotune-no-cudagraphs)", lambda c: replace(c, compile_mode="max-autotune-no-cudagraphs"),
         _cuda_kernels, _compiled),  # fmt: skip
    Rung("+ CUDA graphs (max-autotune)", lambda c: replace(c, compile_mode="max-autotune"), _cuda_kernels, _compiled),
)
RUNGS: tuple[Rung, ...] = (
    Rung("baseline: fp32, naive attention, for-loop AdamW, vocab 50257", lambda c: c, _never_skipped),
    Rung("+ TF32 matmuls", lambda c: replace(c, tf32=True), _tf32),
    Rung("+ fused AdamW", lambda c: replace(c, adamw="fused"), _fused),
    Rung("+ bf16 autocast", lambda c: replace(c, dtype="bf16"), _bf16),
    Rung("+ SDPA / flash attention", lambda c: replace(c, attention="sdpa"), _never_skipped),
    Rung("+ torch.compile", lambda c: replace(c, compile=True), _compile),
    Rung("+ vocabulary padded to 50304", lambda c: replace(c, model=replace(c.model, vocab_size=PADDED_VOCAB)), _never_skipped),
    *FRONTIER,
)
LARGEST_BATCH = "+ largest micro-batch that fits"


def foreign_reason(rung: Rung, config: BenchConfig) -> str | None:
    """Why a rung cannot reach a --model-factory module: attention and vocabulary are the module's own."""
    if config.factory is None:
        return None
    if "attention" in rung.name:
        return "--model-factory: the module's attention is its own code; gptbench's attention switch does not reach it"
    if "vocabulary" in rung.name:
        return "--model-factory: the module's vocabulary is its own; gptbench cannot pad it"
    if "cross-entropy" in rung.name:
        return "--model-factory: the module computes its own logits; gptbench's loss switch does not reach them"
    return None


def baseline(config: BenchConfig) -> BenchConfig:
    """The ladder's first rung: every optimization off, the rest of `config` (model, seq, batch, steps) kept."""
    plain: dict[str, Any] = {"loss": "standard", "compile_mode": "default", "fp8": False}
    if config.factory is not None:  # the module's own vocabulary stays
        return replace(config, dtype="fp32", tf32=False, adamw="for-loop", attention="naive", compile=False, **plain)
    return replace(
        config,
        **plain,
        dtype="fp32",
        tf32=False,
        adamw="for-loop",
        attention="naive",
        compile=False,
        model=replace(config.model, vocab_size=GPT2_VOCAB),
        allocator="system",  # the CPU ladder's first rungs add tcmalloc and physical-core threads
        threads=None,
    )


@dataclass(frozen=True)
class PlannedRung:
    name: str
    config: BenchConfig  # the cumulative configuration at this rung
    skipped: str | None  # why it does not apply here (the config then equals the previous rung's)


def plan_ladder(config: BenchConfig) -> list[PlannedRung]:
    """The rungs in order, each the previous configuration plus its one change (or skipped, with the reason)."""
    device = config.torch_device
    current = baseline(config)
    planned = []
    for rung in ladder_rungs(config):
        reason = rung.skip_reason(device) or foreign_reason(rung, config) or rung.needs(current)
        if reason is None:
            current = rung.change(current)
        planned.append(PlannedRung(rung.name, current, reason))
    return planned


def ladder_items(config: BenchConfig, largest_batch: int | None) -> list[SeriesItem]:
    """The ladder as a series; the last rung runs the final configuration at `largest_batch` (skipped if None)."""
    planned = plan_ladder(config)
    items = [SeriesItem(p.name, p.config, p.skipped) for p in planned]
    final = planned[-1].config
    if largest_batch is None:
        items.append(SeriesItem(LARGEST_BATCH, final, "no batch search was run"))
    else:
        items.append(SeriesItem(f"{LARGEST_BATCH} ({largest_batch})", replace(final, micro_batch=largest_batch)))
    return items


def fit_baseline_batch(config: BenchConfig, bound_gb: float | None) -> tuple[BenchConfig, str | None]:
    """`config` at the largest micro-batch (halving from its own) whose ladder baseline (fp32 weights and
    activations, naive attention with its T x T scores, unpadded vocabulary) is estimated to fit in `bound_gb`,
    with a sentence saying what was chosen and why; unchanged when it fits or no bound is known. When not even
    micro-batch 1 fits, the cheapest memory switch that makes it fit (predict/fit.py) is turned on for every rung."""
    from gptbench.predict.fit import cheapest_fit

    if bound_gb is None:
        return config, None
    batch = config.micro_batch
    while batch > 1 and _baseline_gb(config, batch) > bound_gb:
        batch //= 2
    if _baseline_gb(config, batch) > bound_gb and not config.activation_checkpointing:
        need = _baseline_gb(config, 1)
        alone = f"the fp32 baseline needs an estimated {need:.1f} GB even at micro-batch 1, over the {bound_gb:.1f} GB bound"
        fit = cheapest_fit(_baseline_workload(config, 1), bound_gb)  # one process: checkpointing is the switch it has
        if fit is None:
            return replace(config, micro_batch=1), (
                f"{alone}, and with activation checkpointing too: the model needs its state sharded over several GPUs "
                "(gptbench estimate --gpus N --shard full says how many; run --nproc N --shard full)"
            )
        fitted, _ = fit_baseline_batch(replace(config, activation_checkpointing=True), bound_gb)
        return fitted, (
            f"{alone}; the cheapest switch that makes it fit is {fit.switch.flags} (costs {fit.switch.cost}): every rung "
            f"runs with it, at micro-batch {fitted.micro_batch} ({_baseline_gb(fitted, fitted.micro_batch):.1f} GB)"
        )
    if batch == config.micro_batch:
        return config, None
    return replace(config, micro_batch=batch), (
        f"ladder micro-batch {batch}, not {config.micro_batch}: the fp32 + naive-attention baseline needs an estimated "
        f"{_baseline_gb(config, config.micro_batch):.1f} GB at {config.micro_batch} and {_baseline_gb(config, batch):.1f} GB "
        f"at {batch}, within the {bound_gb:.1f} GB bound; every rung runs at {batch} so that each step changes one thing"
    )


def _baseline_workload(config: BenchConfig, batch: int) -> Workload:
    from gptbench.predict.workload import workload_of

    b = baseline(replace(config, micro_batch=batch))
    step = {"seq_len": b.seq_len, "micro_batch": batch, "grad_accum": b.grad_accum, "dtype": "fp32", "tf32": False}
    ckpt = config.activation_checkpointing
    return workload_of(b.model, **step, compile=False, attention="naive", adamw="for-loop", activation_checkpointing=ckpt)


def _baseline_gb(config: BenchConfig, batch: int) -> float:
    from gptbench.predict.workload import memory_estimate_gb

    return memory_estimate_gb(_baseline_workload(config, batch))


def final_config(config: BenchConfig) -> BenchConfig:
    """The configuration at the top of the ladder (before the batch rung): where the batch search runs, in torch.compile's
    default mode: autotuning every probe's new shapes would take minutes each, and the mode changes the kernels, not
    the tensors that must fit (CUDA graphs keep a memory pool of their own: a batch that only just fits may then
    report oom in the last rung)."""
    return replace(plan_ladder(config)[-1].config, compile_mode="default")


def ladder_rungs(config: BenchConfig) -> tuple[Rung, ...]:
    """The ladder for `config`'s device: on a CPU, the host runtime's rungs come right after the baseline."""
    if config.torch_device.type != "cpu":
        return RUNGS
    return (RUNGS[0], _allocator_rung(config.allocator), _threads_rung(config.threads), *RUNGS[1:])


def _allocator_rung(target: str) -> Rung:
    """`+ tcmalloc` (or the allocator the user chose): preloaded into the rung's worker process."""

    name = "tcmalloc" if target == "system" else target

    def skip_reason(_: torch.device) -> str | None:
        if find_library(name) is None:  # also why `--allocator auto` resolved to the system allocator
            return f"lib{name} is not installed here: {INSTALL_HINT[name]}"
        return "the system allocator was asked for (--allocator system)" if target == "system" else None

    return Rung(f"+ {name}", lambda c: replace(c, allocator=target), skip_reason)


def _threads_rung(target: int | None) -> Rung:
    """`+ physical-core threads`: torch's intra-op threads from its own default to the run's count (one per physical
    core of this process's CPU set). The default is asked of torch itself in this process, which sets no count:
    the builds differ (c10 counts the machine's cores, MKL and OpenMP builds may follow the CPU set)."""
    name = "+ physical-core threads" if target is None or target == default_threads() else f"+ {target} intra-op threads"

    def skip_reason(_: torch.device) -> str | None:
        default = torch.get_num_threads()
        if target is None or target == default:
            cores = physical_cores()
            why = "one per physical core here (no hyper-threads in this CPU set)" if default == cores else "as --threads asks"
            return f"torch's default is already {default} threads: {why}"
        return None

    return Rung(name, lambda c: replace(c, threads=target), skip_reason)
