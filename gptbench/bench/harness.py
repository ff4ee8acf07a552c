"""The timing harness: warm-up timed apart, then measured steps each closed by a device synchronisation."""

from __future__ import annotations

import contextlib
import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from gptbench.errors import stop_signal


@dataclass(frozen=True)
class Progress:
    """What the harness reports as it goes: phase `warmup` or `measure`, step i of n, live tokens/s."""

    phase: str
    step: int
    total: int
    tokens_per_sec: float | None = None


ProgressFn = Callable[[Progress], None]


@dataclass(frozen=True)
class Timing:
    warmup_s: float
    step_times_s: list[float]
    losses: list[float]  # warm-up and measured steps, in order
    interrupted_by: int | None = None  # the stop signal that ended the measured steps early (SIGINT, SIGTERM)


def measure(
    step: Callable[[], torch.Tensor],
    sync: Callable[[], None],
    warmup_steps: int,
    steps: int,
    tokens_per_step: int,
    on_progress: ProgressFn | None = None,
    during_measure: contextlib.AbstractContextManager[object] | None = None,
) -> Timing:
    """Run warm-up then measured steps; each step is timed from its start until the device is idle again.
    `during_measure` is entered just before the first measured step and left after the last (telemetry).
    A stop signal (KeyboardInterrupt) after the first measured step ends the steps there and the Timing says so;
    before it, nothing was measured and the interrupt goes on up."""
    report = on_progress or (lambda _: None)
    losses: list[torch.Tensor] = []
    report(Progress("warmup", 0, warmup_steps))
    start = time.perf_counter()
    for i in range(warmup_steps):
        losses.append(step())
        sync()
        report(Progress("warmup", i + 1, warmup_steps))
    sync()
    warmup_s = time.perf_counter() - start
    times: list[float] = []
    stopped: int | None = None
    report(Progress("measure", 0, steps))
    with during_measure or contextlib.nullcontext():
        try:
            for i in range(steps):
                t0 = time.perf_counter()
                loss = step()
                sync()  # without it the clock stops while kernels are still queued
                times.append(time.perf_counter() - t0)
                losses.append(loss)
                report(Progress("measure", i + 1, steps, tokens_per_step / times[-1]))
        except KeyboardInterrupt as e:
            if not times:
                raise
            stopped = stop_signal(e)  # the step in flight is dropped; those before it are whole
    # Losses stay on the device until the end: reading each one would add a sync of its own per step.
    return Timing(warmup_s, times, [float(v) for v in torch.stack(losses).float().cpu()] if losses else [], stopped)


def quantile(values: list[float], q: float) -> float:
    """Linear-interpolated quantile, q in [0, 1]."""
    ordered = sorted(values)
    pos = q * (len(ordered) - 1)
    lo, hi = math.floor(pos), math.ceil(pos)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


@dataclass(frozen=True)
class StepRates:
    """A measurement's spread over its timed steps (cloud.estimate.Throughput is a rate with its provenance)."""

    tokens_per_sec: float  # median over steps
    p10: float
    p90: float
    step_time_s: float  # median


def throughput(step_times_s: list[float], tokens_per_step: int) -> StepRates:
    """Median and p10/p90 tokens/s over per-step times (p10 is the slow end)."""
    rates = [tokens_per_step / t for t in step_times_s]
    return StepRates(
        tokens_per_sec=statistics.median(rates),
        p10=quantile(rates, 0.10),
        p90=quantile(rates, 0.90),
        step_time_s=statistics.median(step_times_s),
    )
