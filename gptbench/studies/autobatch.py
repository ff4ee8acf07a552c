"""`--batch auto`: the largest micro-batch that fits (double, then bisect), each probe in its own process,
then the fastest of the batches that fit, measured in full."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from gptbench.bench.config import BenchConfig
from gptbench.bench.worker import run_in_subprocess
from gptbench.errors import GptbenchError
from gptbench.reports.schema import Run
from gptbench.reports.text import GB


@dataclass(frozen=True)
class Probe:
    micro_batch: int
    fits: bool
    peak_gb: float | None  # what the probe used: CUDA reserved, the MPS driver's allocation, or the process's RSS on a CPU
    why: str  # "fits", "over the bound", or the failure


@dataclass(frozen=True)
class AutoBatch:
    bound_gb: float  # the memory a probe may use
    bound_source: str
    probes: list[Probe]
    largest: int  # the largest micro-batch that fit
    runs: list[Run]  # full measurements of the candidates, fastest first


def memory_bound_gb(device: str, memory_limit_gb: float | None, headroom: float) -> tuple[float, str]:
    """How much memory a run may use: the limit, else the device's memory (CUDA) or the host's available memory,
    less `headroom` (a fraction kept free for the allocator's fragmentation and other processes)."""
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


def _available_host_gb() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024 / GB
    except OSError:
        pass
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES") / GB


def _used_gb(run: Run) -> float | None:
    m = run.result.memory
    if run.config.device and run.config.device.startswith("cuda"):
        return m.peak_reserved_gb
    if run.config.device == "mps":  # the Metal driver's high-water mark (cache included): what the Mac must hold
        return m.peak_reserved_gb if m.peak_reserved_gb is not None else m.peak_allocated_gb
    return m.host_peak_rss_gb


def probe(config: BenchConfig, micro_batch: int, bound_gb: float) -> Probe:
    """Two eager steps at `micro_batch` in a fresh process: eager needs at least the memory compiled code does,
    so a batch that fits here fits compiled, and a probe does not pay for compilation."""
    trial = replace(config, micro_batch=micro_batch, compile=False, warmup_steps=1, steps=1)
    run = run_in_subprocess(trial)
    used = _used_gb(run)
    if run.result.status != "ok":
        return Probe(micro_batch, False, used, f"{run.result.status}: {run.result.error}")
    if used is not None and used > bound_gb:
        return Probe(micro_batch, False, used, f"used {used:.2f} GB, over the {bound_gb:.2f} GB bound")
    return Probe(micro_batch, True, used, "fits")


def find_largest(
    config: BenchConfig, bound_gb: float, max_batch: int, on_probe: Callable[[Probe], None] | None = None
) -> tuple[int, list[Probe]]:
    """Double from 1 until a probe fails or `max_batch` is reached, then bisect between the last fit and the first miss
    (to the exact size below 16, to a multiple of 8 above)."""
    probes: list[Probe] = []

    def check(b: int) -> bool:
        probes.append(probe(config, b, bound_gb))
        if on_probe:
            on_probe(probes[-1])
        return probes[-1].fits

    good, bad, b = 0, None, 1
    while b <= max_batch:
        if not check(b):
            bad = b
            break
        good, b = b, b * 2
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
        if check(mid):
            good = mid
        else:
            bad = mid
    return good, probes


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
) -> AutoBatch:
    """Find the largest micro-batch within the memory bound, measure the candidates in full, fastest first."""
    if max_batch < 1:
        raise GptbenchError(f"--max-batch must be at least 1, got {max_batch}")
    bound, source = memory_bound_gb(config.device, memory_limit_gb, headroom)
    largest, probes = find_largest(config, bound, max_batch, on_probe)
    runs = []
    for b in candidates(largest, [p.micro_batch for p in probes if p.fits]):
        run = run_in_subprocess(replace(config, micro_batch=b))
        run.name = f"batch {b}" + (" (largest that fits)" if b == largest else "")
        runs.append(run)
        if on_run:
            on_run(run)
    runs.sort(key=lambda r: -(r.result.tokens_per_sec or 0.0) if r.result.status == "ok" else float("inf"))
    return AutoBatch(bound, source, probes, largest, runs)
