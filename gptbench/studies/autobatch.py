"""`--batch auto`: the largest micro-batch that fits (double, then bisect), each probe in its own process,
then the fastest of the batches that fit, measured in full. On a host (CPU) run the search shares the machine's
memory with everything else, so it never starts a probe predicted over the bound (batchplan.py), caps each probe's
process a little above the bound and never above the memory available when it starts, and stops growing when a
probe's step gets too slow. The candidates' full runs get the same cap and a time limit from their probe's step;
on CUDA every child's caching allocator is capped at the bound (bench/worker.cap_device)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass, replace

from gptbench.bench.config import BenchConfig
from gptbench.bench.worker import run_in_subprocess
from gptbench.errors import GptbenchError
from gptbench.reports.schema import Run
from gptbench.reports.text import GB
from gptbench.studies.batchplan import fit_memory, predicted_over, prior_per_sample_gb


@dataclass(frozen=True)
class Probe:
    micro_batch: int
    fits: bool
    peak_gb: float | None  # what the probe used: CUDA reserved, the MPS driver's allocation, or the process's RSS on a CPU
    why: str  # "fits", "over the bound", "not run: predicted ...", "... stopped growing", or the failure
    predicted_gb: float | None = None  # what the memory line predicted before it ran (None: no prediction yet)
    ran: bool = True  # False: predicted over the bound, never started
    step_time_s: float | None = None  # the probe's one measured step
    slow: bool = False  # fits, but its step took longer than the step limit: the search stops growing here
    status: str = "ok"  # the probe run's status (oom / error: its peak says nothing about the batch's need)

    @property
    def measured(self) -> tuple[int, float] | None:
        """(batch, peak GB) for the memory line: a probe that ran to the end and read its peak."""
        return (self.micro_batch, self.peak_gb) if self.ran and self.status == "ok" and self.peak_gb is not None else None


@dataclass(frozen=True)
class ProbeLimits:
    """What bounds a probe besides the memory bound: its own hard cap, and the step time past which a bigger
    batch no longer pays (host runs)."""

    data_limit_gb: float | None  # the child's cap: RLIMIT_DATA on a host (bench/worker.cap_data), the caching
    # allocator's on CUDA (bench/worker.cap_device); None: no cap (MPS: the Metal driver's memory)
    step_limit_s: float | None  # stop growing past a probe whose step takes longer; None: no step bound (GPUs)
    host: bool = True  # the cap is on host memory (re-checked against what is available), not a GPU's

    @property
    def process_timeout_s(self) -> float:
        """A probe that takes this long (start, build, a warm-up and a measured step) is stopped: it is swapping
        or far past the step limit. The 120 s is for the process start and model build of a big preset; without a
        step limit (GPUs) a step may take 120 s, far beyond any step of a model that fits."""
        return START_S + 4 * (self.step_limit_s if self.step_limit_s is not None else START_S)

    def cap_now_gb(self) -> float | None:
        """The cap for a child starting now: never above the host memory available at this moment (re-read for each
        child, since other processes come and go) on a host run; the cap itself on CUDA."""
        if self.data_limit_gb is None or not self.host:
            return self.data_limit_gb
        return min(self.data_limit_gb, _available_host_gb())

    def run_timeout_s(self, config: BenchConfig, probe_step_s: float | None) -> float:
        """A candidate's full run is stopped after this long: start and build, compilation when asked, and each
        warm-up and measured step at 4x its probe's eager step (compiled steps are no slower once compiled)."""
        step_s = probe_step_s if probe_step_s is not None else (self.step_limit_s or START_S)
        compiling = COMPILE_ALLOWANCE_S if config.compile else 0.0
        return START_S + compiling + 4 * step_s * (config.warmup_steps + config.steps)


START_S = 120.0  # a child's process start and model build, for a big preset on a slow host
# torch.compile of a large preset's forward and backward on a slow host: a bound set well past any compilation, so
# that only a run that hangs or swaps is stopped (it is not an estimate of the time).
COMPILE_ALLOWANCE_S = 1200.0
NO_LIMITS = ProbeLimits(None, None)
# The probe's cap sits this far above the bound: a process's data segment counts thread stacks and the allocator's
# untouched reserve beside its tensors (0.3 GB more than its RSS with 16 threads here, see bench/worker.cap_data),
# so a batch that fits the bound must not trip the cap. It is kept within the default 10% headroom for bounds above
# 5 GB, so that the cap stays below the memory the host had available.
CAP_MARGIN_GB = 0.5
CAP_MARGIN_FRACTION = 0.05  # of the bound, when that is more than CAP_MARGIN_GB
DEFAULT_STEP_LIMIT_S = 10.0  # CPU: a probe step longer than this stops the search growing (option --probe-step-limit-s)


def probe_limits(device: str, bound_gb: float, step_limit_s: float | None = DEFAULT_STEP_LIMIT_S) -> ProbeLimits:
    """The probes' cap and step bound. Host (CPU) runs on Linux: the data segment capped a margin above the bound,
    and the step limit. CUDA: the caching allocator capped at the bound (a GPU's memory is the driver's, not the
    data segment, and CUDA reserves huge address ranges); its steps are short. On macOS setrlimit's data limit is
    not enforced for mmap, and MPS memory is the Metal driver's: no cap there."""
    if device.startswith("cuda"):  # the caching allocator's cap is exact: no margin for thread stacks
        return ProbeLimits(bound_gb, None, host=False)
    if device != "cpu":
        return NO_LIMITS
    if step_limit_s is not None and step_limit_s <= 0:
        raise GptbenchError(f"--probe-step-limit-s must be positive, got {step_limit_s}")
    if not sys.platform.startswith("linux"):
        return ProbeLimits(None, step_limit_s)
    cap = bound_gb + max(CAP_MARGIN_GB, CAP_MARGIN_FRACTION * bound_gb)
    outer = _hard_data_limit_gb()  # a stricter limit this process runs under (prlimit, a CI runner) is the probe's too
    return ProbeLimits(cap if outer is None else min(cap, outer), step_limit_s)


def _hard_data_limit_gb() -> float | None:
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    return None if hard == resource.RLIM_INFINITY else hard / GB


@dataclass(frozen=True)
class AutoBatch:
    bound_gb: float  # the memory a probe may use
    bound_source: str
    probes: list[Probe]
    largest: int  # the largest micro-batch that fit
    runs: list[Run]  # full measurements of the candidates, fastest first
    limits: ProbeLimits = NO_LIMITS


def memory_bound_gb(device: str, memory_limit_gb: float | None, headroom: float) -> tuple[float, str]:
    """How much memory a run may use: the limit, else the device's memory (CUDA) or the host's available memory,
    less `headroom` (a fraction kept free for the allocator's fragmentation and other processes). A limit above the
    machine's memory is refused where the option is read (cli/options.memory_limit_gb)."""
    if not 0 <= headroom < 1:
        raise GptbenchError(f"--headroom {headroom}: give a fraction from 0 up to (not including) 1, e.g. 0.1")
    if memory_limit_gb is not None:
        total, source = memory_limit_gb, "--memory-limit"
    elif device.startswith("cuda"):
        import torch

        total, source = torch.cuda.get_device_properties(device).total_memory / GB, "device memory"
    elif device == "mps":
        import torch

        total, source = torch.mps.recommended_max_memory() / GB, "MPS recommended working set"
    else:
        total, source = _available_host_gb(), "available host memory"
    return total * (1 - headroom), f"{source} {total:.1f} GB less {headroom:.0%} headroom"


def _meminfo_gb(key: str) -> float | None:
    """A /proc/meminfo line (`MemAvailable`, `MemTotal`) in GB; None where there is no /proc (macOS)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(f"{key}:"):
                    return int(line.split()[1]) * 1024 / GB
    except OSError:
        pass
    return None


def _available_host_gb() -> float:
    """The host memory available now (MemAvailable: free plus what the kernel can reclaim)."""
    import os

    found = _meminfo_gb("MemAvailable")
    return found if found is not None else os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES") / GB


def _used_gb(run: Run) -> float | None:
    m = run.result.memory
    if run.config.device and run.config.device.startswith("cuda"):
        return m.peak_reserved_gb
    if run.config.device == "mps":  # the Metal driver's high-water mark (cache included): what the Mac must hold
        return m.peak_reserved_gb if m.peak_reserved_gb is not None else m.peak_allocated_gb
    return m.host_peak_rss_gb


def probe(config: BenchConfig, micro_batch: int, bound_gb: float, limits: ProbeLimits = NO_LIMITS) -> Probe:
    """Two eager steps at `micro_batch` in a fresh process: eager needs at least the memory compiled code does,
    so a batch that fits here fits compiled, and a probe does not pay for compilation. Under `limits` its process
    is capped (an allocation past the cap comes back as `oom`) and a slow step stops the search growing."""
    trial = replace(config, micro_batch=micro_batch, compile=False, warmup_steps=1, steps=1)
    cap = limits.cap_now_gb()
    run = run_in_subprocess(trial, limits.process_timeout_s, cap)
    used, r = _used_gb(run), run.result
    step_s = r.step_times_s[-1] if r.status == "ok" and r.step_times_s else None
    if r.status != "ok":
        cap_text = f" (the probe's {cap:.2f} GB {'data' if limits.host else 'device'} cap)" if cap and r.status == "oom" else ""
        return Probe(micro_batch, False, used, f"{r.status}{cap_text}: {r.error}", status=r.status)
    if used is not None and used > bound_gb:
        return Probe(micro_batch, False, used, f"used {used:.2f} GB, over the {bound_gb:.2f} GB bound", step_time_s=step_s)
    if limits.step_limit_s is not None and step_s is not None and step_s > limits.step_limit_s:
        why = f"fits; its step took {step_s:.1f} s, over the {limits.step_limit_s:g} s probe step limit: stopped growing"
        return Probe(micro_batch, True, used, why, step_time_s=step_s, slow=True)
    return Probe(micro_batch, True, used, "fits", step_time_s=step_s)


ProbeFn = Callable[[BenchConfig, int, float, ProbeLimits], Probe]


def find_largest(
    config: BenchConfig,
    bound_gb: float,
    max_batch: int,
    on_probe: Callable[[Probe], None] | None = None,
    limits: ProbeLimits = NO_LIMITS,
    run_probe: ProbeFn = probe,
) -> tuple[int, list[Probe]]:
    """Double from 1 until a probe fails or `max_batch` is reached, then bisect between the last fit and the first miss
    (to the exact size below 16, to a multiple of 8 above). A batch the memory line predicts over the bound is not
    started: it counts as a miss (batchplan.py). A probe whose step is over the step limit ends the search there."""
    probes: list[Probe] = []
    prior = prior_per_sample_gb(config)

    def check(b: int) -> Probe:
        measured = [p.measured for p in probes if p.measured]
        over = predicted_over(b, measured, prior, bound_gb)  # None before the first probe: batch 1 always runs
        if over is not None:
            gb, basis = over
            why = f"not run: predicted {gb:.2f} GB ({basis}), over the {bound_gb:.2f} GB bound"
            p = Probe(b, False, None, why, gb, ran=False, status="skipped")
        else:
            line = fit_memory(measured, prior)
            p = replace(run_probe(config, b, bound_gb, limits), predicted_gb=line.predict_gb(b) if line else None)
        probes.append(p)
        if on_probe:
            on_probe(p)
        return p

    good, bad, b = 0, None, 1
    while b <= max_batch:
        p = check(b)
        if not p.fits:
            bad = b
            break
        good, b = b, b * 2
        if p.slow:
            return good, probes
    if good == 0:
        raise GptbenchError(
            f"even micro-batch 1 does not fit ({probes[0].why}); use a smaller --model or --seq, or raise --memory-limit"
        )
    if bad is None:
        bad = min(b, max_batch + 1)
    # From 16 up, bisect over multiples of 8: tensor cores and tiled kernels like them, and each probe costs a
    # process start; below that every size is tried.
    unit = 8 if good >= 16 else 1
    while bad - good > unit:
        mid = (good + bad) // 2 // unit * unit
        if mid <= good:
            break
        p = check(mid)
        if not p.fits:
            bad = mid
            continue
        good = mid
        if p.slow:
            break
    return good, probes


def why_largest(probes: list[Probe], largest: int, max_batch: int) -> str:
    """What ended the search at `largest`, as the run's name says it: the probe step limit (the batch fits, and a
    bigger one was never tried), --max-batch, or memory (the next size up did not fit)."""
    slow = next((p for p in probes if p.micro_batch == largest and p.slow), None)
    if slow is not None and slow.step_time_s is not None:
        return f"largest tried: its step took {slow.step_time_s:.1f} s, past the probe step limit"
    if largest >= max_batch:
        return f"largest tried: --max-batch {max_batch}"
    return "largest that fits"


def candidates(largest: int, fitting: list[int]) -> list[int]:
    """The largest batch and the two largest powers of two below it that fit: the fastest is usually among them."""
    powers = sorted({b for b in fitting if b & (b - 1) == 0 and b < largest}, reverse=True)[:2]
    return [largest, *powers]


def auto_batch(
    config: BenchConfig,
    memory_limit_gb: float | None = None,
    headroom: float = 0.1,
    max_batch: int = 1024,
    on_probe: Callable[[Probe], None] | None = None,
    on_run: Callable[[Run], None] | None = None,
    step_limit_s: float | None = DEFAULT_STEP_LIMIT_S,
) -> AutoBatch:
    """Find the largest micro-batch within the memory bound, measure the candidates in full, fastest first."""
    bound, source, limits = search_bounds(config.device, memory_limit_gb, headroom, max_batch, step_limit_s)
    largest, probes = find_largest(config, bound, max_batch, on_probe, limits)
    runs = []
    steps = {p.micro_batch: p.step_time_s for p in probes if p.fits}
    for b in candidates(largest, list(steps)):
        candidate = replace(config, micro_batch=b)  # under the probes' cap, re-read now, and a time limit of its own
        run = run_in_subprocess(candidate, limits.run_timeout_s(candidate, steps[b]), limits.cap_now_gb())
        run.name = f"batch {b}" + (f" ({why_largest(probes, largest, max_batch)})" if b == largest else "")
        runs.append(run)
        if on_run:
            on_run(run)
    return AutoBatch(bound, source, probes, largest, fastest_first(runs), limits)


def fastest_first(runs: list[Run]) -> list[Run]:
    """The runs by tokens/s, fastest first; runs that did not finish ok last."""
    return sorted(runs, key=lambda r: -(r.result.tokens_per_sec or 0.0) if r.result.status == "ok" else float("inf"))


def search_bounds(
    device: str, memory_limit_gb: float | None, headroom: float, max_batch: int, step_limit_s: float | None
) -> tuple[float, str, ProbeLimits]:
    """The memory bound (and where it came from) and the probes' limits, with the options checked."""
    if max_batch < 1:
        raise GptbenchError(f"--max-batch must be at least 1, got {max_batch}")
    bound, source = memory_bound_gb(device, memory_limit_gb, headroom)
    return bound, source, probe_limits(device, bound, step_limit_s)
