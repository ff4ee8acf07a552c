"""`gptbench peak`: what the hardware actually delivers. Achieved matmul TFLOP/s per precision over a few large
shapes, and memory bandwidth from a large device-to-device copy; runs then report MFU against it too."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from gptbench.errors import GptbenchError
from gptbench.hardware.capability import matmul_precision, native_bf16
from gptbench.hardware.device import cpu_flags, synchronize
from gptbench.reports.schema import MatmulPeak, MeasuredPeak, Report, Run
from gptbench.reports.store import find_reports, load_report

# Square shapes and one GPT-2 124M MLP shape (16 x 1024 tokens, 768 -> 3072); CPUs get smaller ones.
GPU_SHAPES = [(4096, 4096, 4096), (8192, 8192, 8192), (16384, 3072, 768)]
CPU_SHAPES = [(1024, 1024, 1024), (2048, 2048, 2048)]
PRECISIONS = ("bf16", "fp16", "tf32", "fp32")
FLUSH_BYTES = 256 * 2**20  # larger than any GPU's L2 (H100/H200: 50 MB) or a CPU's last-level cache
DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "tf32": torch.float32, "fp32": torch.float32}


def _timer(device: torch.device) -> Callable[[Callable[[], None], Callable[[], None]], float]:
    """Seconds for one call of `fn`, after `before` ran untimed: CUDA events on a GPU, else wall clock + sync.
    The events are recorded on `device`'s own stream: `Event.record()` without one records on the *current*
    device's stream (torch.cuda.Event docs), which for `cuda:1` is GPU 0's, where nothing of ours runs."""
    if device.type == "cuda":

        def timed(fn: Callable[[], None], before: Callable[[], None]) -> float:
            stream = torch.cuda.current_stream(device)
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            before()
            start.record(stream)
            fn()
            end.record(stream)
            end.synchronize()
            return start.elapsed_time(end) / 1000

        return timed

    def wall(fn: Callable[[], None], before: Callable[[], None]) -> float:
        before()
        synchronize(device)
        t0 = time.perf_counter()
        fn()
        synchronize(device)
        return time.perf_counter() - t0

    return wall


def _repeats_for(seconds_each: float, budget_s: float, least: int = 3, most: int = 100) -> int:
    return max(least, min(most, int(budget_s / max(seconds_each, 1e-6))))


def measure_matmul(device: torch.device, precision: str, shape: tuple[int, int, int], budget_s: float) -> MatmulPeak:
    """Median TFLOP/s of (m x k) @ (k x n) on random inputs, the cache flushed before every repeat."""
    m, n, k = shape
    timed = _timer(device)
    flush = torch.empty(FLUSH_BYTES // 4, dtype=torch.float32, device=device)
    with matmul_precision(precision == "tf32"):
        a = torch.randn(m, k, device=device, dtype=DTYPES[precision])
        b = torch.randn(k, n, device=device, dtype=DTYPES[precision])
        out = torch.empty(m, n, device=device, dtype=DTYPES[precision])

        def mm() -> None:
            torch.matmul(a, b, out=out)

        def clear() -> None:
            flush.zero_()

        first = timed(mm, clear)  # also warms up the kernel choice
        times = [timed(mm, clear) for _ in range(_repeats_for(first, budget_s))]
    seconds = statistics.median(times)
    return MatmulPeak(precision, m, n, k, float(f"{2 * m * n * k / seconds / 1e12:.4g}"), len(times))


def measure_bandwidth(device: torch.device, size_bytes: int, budget_s: float) -> tuple[float, int]:
    """GB/s of a device-to-device copy of `size_bytes`, counting bytes read plus bytes written."""
    timed = _timer(device)
    src = torch.ones(size_bytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)

    def copy() -> None:
        dst.copy_(src)

    first = timed(copy, lambda: None)
    times = [timed(copy, lambda: None) for _ in range(_repeats_for(first, budget_s))]
    return round(2 * size_bytes / statistics.median(times) / 1e9, 1), size_bytes


def supported_precisions(device: torch.device) -> list[str]:
    """Precisions worth measuring here: TF32 and bf16 need CUDA sm80+; on a CPU, fp16 only with AMX-FP16
    (elsewhere torch emulates it about a hundred times slower than fp32, which would take minutes to time)."""
    if device.type == "cuda":
        modern = native_bf16(device)  # bf16 and TF32 tensor cores arrive together, with Ampere (sm80)
        return [p for p in PRECISIONS if modern or p in ("fp16", "fp32")]
    if device.type == "mps":
        return ["bf16", "fp16", "fp32"]
    return ["bf16", "fp32"] + (["fp16"] if "amx_fp16" in cpu_flags() else [])


def measure_peak(
    device: torch.device, budget_s: float = 1.0, on_result: Callable[[MatmulPeak], None] | None = None
) -> MeasuredPeak:
    """Matmul TFLOP/s for each precision and shape, then copy bandwidth; `budget_s` bounds each measurement."""
    if device.type == "cuda":
        with torch.cuda.device(device):  # `device` current for the whole measurement: its stream, its allocations
            return _measure_peak(device, budget_s, on_result)
    return _measure_peak(device, budget_s, on_result)


def _measure_peak(device: torch.device, budget_s: float, on_result: Callable[[MatmulPeak], None] | None) -> MeasuredPeak:
    shapes = GPU_SHAPES if device.type == "cuda" else CPU_SHAPES
    results = []
    for precision in supported_precisions(device):
        for shape in shapes:
            results.append(measure_matmul(device, precision, shape, budget_s))
            if on_result:
                on_result(results[-1])
    best: dict[str, float] = {}
    for r in results:
        best[r.dtype] = max(best.get(r.dtype, 0.0), r.tflops)
    copy_bytes = 2 * 2**30 if device.type == "cuda" else 256 * 2**20
    bandwidth, size = measure_bandwidth(device, copy_bytes, budget_s)
    timing = "CUDA events, L2 flushed before each repeat" if device.type == "cuda" else "wall clock around a sync"
    return MeasuredPeak(str(device), results, best, bandwidth, size, f"{timing}; median of repeats")


def precision_of(dtype: str, tf32: bool) -> str:
    """The precision a run's matmuls use: its autocast dtype, or tf32/fp32 for fp32 runs."""
    return ("tf32" if tf32 else "fp32") if dtype == "fp32" else dtype


def attach_measured_peak(run: Run, peak: MeasuredPeak | None) -> None:
    """Fill a run's MFU against the measured peak of its precision ("% of achievable")."""
    r = run.result
    if peak is None or r.status != "ok" or r.achieved_tflops is None:
        return
    measured = peak.best_tflops.get(precision_of(run.config.dtype, run.config.tf32))
    if measured:
        r.measured_peak_tflops = measured
        r.mfu_measured = r.achieved_tflops / (measured * run.config.world_size)


def newest_peak_for(folder: str | Path, report: Report) -> MeasuredPeak | None:
    """The newest `gptbench peak` result in `folder` from this same host and accelerator, if any."""
    found: list[tuple[str, MeasuredPeak]] = []
    for path in find_reports(folder):
        try:
            other = load_report(path)
        except GptbenchError:  # a folder may hold anything; unreadable files are simply not peaks
            continue
        same = other.machine.hostname == report.machine.hostname and other.machine.accelerator == report.machine.accelerator
        if other.peak is not None and same:
            found.append((other.created, other.peak))
    return max(found, key=lambda item: item[0])[1] if found else None
