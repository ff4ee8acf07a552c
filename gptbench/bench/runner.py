"""One measured run end to end: build, warm up, measure, account; and the report that holds it."""

from __future__ import annotations

import gc
import math
from pathlib import Path

import torch

import gptbench
from gptbench.bench.config import BenchConfig, config_notes
from gptbench.bench.contention import ContentionWatch
from gptbench.bench.distributed import gather_memory, is_distributed, rank, sync_ranks
from gptbench.bench.failure import describe_failure
from gptbench.bench.flops import HARDWARE_FLOPS_FORMULA, flops_per_token, formula_for, mfu
from gptbench.bench.harness import ProgressFn, Timing, measure, throughput
from gptbench.bench.memory import MemoryTracker, reset_peak_memory
from gptbench.bench.step import Trainer, intra_op_threads
from gptbench.bench.telemetry import sampler_for
from gptbench.data.sources import make_source
from gptbench.errors import GptbenchError, Stopped, signal_name
from gptbench.hardware.allocator import allocator_in_use
from gptbench.hardware.capability import matmul_precision, mig_slice, native_tf32
from gptbench.hardware.machine import fingerprint
from gptbench.hardware.peak import attach_measured_peak, newest_peak_for
from gptbench.hardware.specs import match_device
from gptbench.model.config import count_params
from gptbench.model.factory import COUNTED_FORMULA
from gptbench.reports.schema import Loss, Machine, ModelShape, ModelSource, Report, Run, RunConfig, RunResult
from gptbench.reports.store import utc_now, write_report


def planned_params(config: BenchConfig) -> int:
    """The model's parameters before it is built: counted from the shape, or from the factory's module."""
    return config.factory.n_params if config.factory is not None else count_params(config.model)


def model_shape(config: BenchConfig, n_params: int) -> ModelShape:
    """The report's model: gptbench's GPT with its switches, or a factory's module with where it came from."""
    m, f = config.model, config.factory
    if f is None:
        switches = (m.tie_head, m.qkv_bias, m.dropout)
        return ModelShape(m.preset, m.n_layer, m.n_head, m.n_embd, m.vocab_size, m.block_size, n_params, *switches)
    source = ModelSource(f.kind, f.source, f.function, list(f.args), f.sha256)
    # The switches describe gptbench's GPT only; a factory's module is described by its source instead.
    return ModelShape(f.name, f.n_layer, f.n_head, f.n_embd, m.vocab_size, m.block_size, n_params, source=source)


def run_config(config: BenchConfig, n_params: int) -> RunConfig:
    """The report's description of a configuration."""
    return RunConfig(
        model=model_shape(config, n_params),
        seq_len=config.seq_len,
        micro_batch=config.micro_batch,
        grad_accum=config.grad_accum,
        world_size=config.world_size,
        tokens_per_step=config.tokens_per_step,
        dtype=config.dtype,
        compile=config.compile,
        attention=config.attention,
        fused_adamw=config.adamw == "fused",
        tf32=config.tf32,
        data=str(config.data),
        device=config.device,
        adamw=config.adamw,
        warmup_steps=config.warmup_steps,
        steps=config.steps,
        allocator=config.allocator,
        threads=config.threads,
        activation_checkpointing=config.activation_checkpointing,
        shard=config.shard,
        micro_batch_basis=config.micro_batch_basis,
        loss=config.loss,
        compile_mode=config.compile_mode,
        fp8=config.fp8,
    )


def peak_for(config: BenchConfig) -> tuple[float | None, str | None, str | None]:
    """(peak TFLOP/s, its source, why there is none) for the device and dtype of `config`."""
    device = config.torch_device
    if device.type != "cuda":
        return None, None, f"no datasheet peak for {device.type.upper()} devices; MFU is reported for known GPUs"
    name = torch.cuda.get_device_name(device)
    if (slice_ := mig_slice(name)) is not None:
        why = f"{name!r} is a MIG slice ({slice_}): the datasheet peak is the whole GPU's, and a slice has a share of its SMs"
        return None, None, why + ", so MFU against it would be understated several times"
    spec = match_device(name)
    if spec is None:
        return None, None, f"GPU {name!r} is not in the spec table (gptbench/hardware/gpus.csv); add a row to get MFU"
    tf32 = config.tf32 and native_tf32(device)  # without TF32 tensor cores fp32 matmuls run at the fp32 peak
    peak = spec.peak_tflops(config.dtype, tf32)
    if peak is None:
        return None, None, f"the spec table has no {config.dtype} peak for {spec.name}"
    precision = "tf32" if config.dtype == "fp32" and tf32 else config.dtype
    return peak, f"{spec.name} dense {precision}: {spec.source} ({spec.source_date})", None


def account(
    config: BenchConfig, timing: Timing, counted_flops: float | None = None, hardware_flops: float | None = None
) -> RunResult:
    """Turn per-step times and losses into the report's numbers; `counted_flops` (per token) replaces the formula;
    `hardware_flops` (per token, recomputation included) gives HFU beside MFU."""
    rate = throughput(timing.step_times_s, config.tokens_per_step)
    fpt = counted_flops if counted_flops is not None else flops_per_token(config.model, config.seq_len)
    peak, source, note = peak_for(config)
    losses = timing.losses
    hw_formula = None if hardware_flops is None else COUNTED_FORMULA if counted_flops is not None else HARDWARE_FLOPS_FORMULA
    return RunResult(
        tokens_per_sec=rate.tokens_per_sec,
        tokens_per_sec_p10=rate.p10,
        tokens_per_sec_p90=rate.p90,
        step_time_s=rate.step_time_s,
        step_times_s=[round(t, 6) for t in timing.step_times_s],
        warmup_s=round(timing.warmup_s, 3),
        flops_per_token=fpt,
        flops_formula=COUNTED_FORMULA if counted_flops is not None else formula_for(config.model),
        achieved_tflops=rate.tokens_per_sec * fpt / 1e12,
        peak_tflops=peak,
        peak_source=source,
        mfu=None if peak is None else mfu(rate.tokens_per_sec, fpt, peak, config.world_size),
        mfu_note=note,
        hardware_flops_per_token=hardware_flops,
        hardware_flops_formula=hw_formula,
        hfu=None if peak is None or hardware_flops is None else mfu(rate.tokens_per_sec, hardware_flops, peak, config.world_size),
        tokens_per_sec_per_rank=rate.tokens_per_sec / config.world_size,
        loss=Loss(
            first=_finite_or_none(losses[0]) if losses else None,
            last=_finite_or_none(losses[-1]) if losses else None,
            all_finite=all(math.isfinite(v) for v in losses),
        ),
    )


def _finite_or_none(value: float) -> float | None:
    return value if math.isfinite(value) else None  # JSON has no NaN


def interrupted_note(timing: Timing, steps: int) -> str:
    """`stopped by SIGTERM after 3 of 10 measured steps`: why an interrupted run's numbers cover fewer steps."""
    name = signal_name(timing.interrupted_by or 2)
    return f"stopped by {name} after {len(timing.step_times_s)} of {steps} measured steps"


def run_benchmark(config: BenchConfig, on_progress: ProgressFn | None = None) -> Run:
    """Train `config` for its warm-up and measured steps and return the measured Run.
    Out-of-memory and runtime failures become a Run with status `oom` or `error`, not an exception
    (in a process group they are raised: the rank must end, so that the whole job does)."""
    device = config.torch_device
    watch = ContentionWatch(device)  # first, while this process has put no work on the device yet
    reset_peak_memory(device)
    tracker = MemoryTracker(device)
    n_params, waits, threads = None, [], None
    try:
        with matmul_precision(config.tf32), intra_op_threads(config.threads):
            threads = torch.get_num_threads()
            # Each rank reads its own data (seed + rank); the model's seed is the same everywhere.
            source = make_source(
                config.data, config.micro_batch, config.seq_len, device, config.seed + rank(), vocab=config.model.vocab_size
            )
            trainer = Trainer(config, source)
            n_params = trainer.n_params
            if device.type == "mps":
                trainer.after_forward = tracker.sample  # MPS has no peak counter: sample where the activations live

            def step() -> torch.Tensor:
                before = trainer.data_wait_s
                loss = trainer.step()
                waits.append(trainer.data_wait_s - before)
                tracker.sample()
                return loss

            sampler = sampler_for(device)  # power, clocks, throttling (NVML) and CPU load over the measured steps
            timing = measure(
                step,
                lambda: sync_ranks(device),  # device sync, then a barrier across ranks
                config.warmup_steps,
                config.steps,
                config.tokens_per_step,
                on_progress,
                during_measure=watch.around(sampler),
            )
        result = account(config, timing, trainer.counted_flops_per_token, trainer.hardware_flops_per_token)
        measured_waits = waits[config.warmup_steps : config.warmup_steps + len(timing.step_times_s)]
        result.data_wait_fraction = sum(measured_waits) / sum(timing.step_times_s)
        if timing.interrupted_by is not None:
            if is_distributed():
                raise Stopped(timing.interrupted_by)  # one rank cannot report for the job: it ends, as on any failure
            result.status = "interrupted"  # its throughput is over fewer steps than asked: readers treat it apart
            result.error = interrupted_note(timing, config.steps)
        # The sampler reads this rank's GPU only, so J/token counts this rank's share of the tokens.
        result.telemetry = sampler.summary(config.tokens_per_step // config.world_size * len(timing.step_times_s))
    except GptbenchError:
        raise
    except Exception as e:  # noqa: BLE001 - torch raises many kinds (RuntimeError, BackendCompilerFailed, ...)
        if is_distributed():
            raise  # one rank cannot go on alone: it exits, and torchrun stops the others
        status, message = describe_failure(e)  # the whole chain: compile errors wrap the real cause
        result = RunResult(status=status, error=message)
    finally:
        trainer = source = None  # type: ignore[assignment]  # free the model before the next run of a sweep
        gc.collect()
    result.memory = tracker.read()
    result.rank_memory = gather_memory(result.memory)
    result.contention = watch.result()
    result.notes = config_notes(config)
    measured = run_config(config, n_params or planned_params(config))
    # What this process really ran on, not what was asked: a preload can fail, and torch may cap threads.
    measured.allocator, measured.threads = allocator_in_use()[0], threads
    return Run(config=measured, result=result)


def new_report(device: torch.device, label: str | None = None, runs: list[Run] | None = None) -> Report:
    """An empty report for this machine, stamped now."""
    machine: Machine = fingerprint(device)
    return Report(machine=machine, runs=runs or [], label=label, created=utc_now(), gptbench_version=gptbench.__version__)


def finish_report(report: Report, out_dir: Path) -> Path:
    """Attach this machine's measured peak (from `gptbench peak` in the same folder), then write the report."""
    peak = newest_peak_for(out_dir, report) if out_dir.is_dir() else None
    for run in report.runs:
        attach_measured_peak(run, peak)
    return write_report(report, out_dir)
