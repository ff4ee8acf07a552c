"""Telemetry over the measured steps: GPU power, energy, clocks, temperature, utilisation and clock-limit reasons
through NVML, and the CPU's frequency and load from /sys and /proc; sampled on a daemon thread at about 10 Hz."""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gptbench.reports.schema import Telemetry

if TYPE_CHECKING:
    import torch

    from gptbench.hardware.nvml import Nvml, NvmlHandle

INTERVAL_S = 0.1  # ~10 Hz: finer than NVML's own power averaging (1 s on Ampere and newer, except GA100)
NVML_TEMPERATURE_GPU, NVML_CLOCK_SM, NVML_CLOCK_MEM = 0, 1, 2  # nvml.h enum values
MAX_FREQ_FILES = 8  # cpufreq files read per sample: a spread of this process's CPUs, so 200-core hosts stay cheap

# NVML's clock event ("throttle") reason bits and whether each costs throughput. Source: NVML API reference,
# "NvmlClocksEventReasons" / "NvmlClocksThrottleReasons" (docs.nvidia.com/deploy/nvml-api, R550 2024-03-12 and
# R590 2026-01-12; DCGM 3.1 field constants quote nvml.h's longer notes), read 2026-11-28.
# Counted (True): the power cap ("clocks optimized to not exceed the power limit"), HW slowdown ("reducing the
# core clocks by a factor of 2 or more": heat, an external power brake, or over-current), SW and HW thermal
# slowdown, and the HW power brake: each holds the clocks below what the work asked for.
# Not counted: GPU idle ("nothing is running on the GPU": no work was slowed), applications clocks and display
# clock settings (clocks an administrator chose: the machine's configuration, not an event during the run), sync
# boost (held to a group's clocks: the limiting GPU shows the real reason), and board limit / reliability
# (newer bits the reference names without saying what they limit): recorded by name, not flagged.
CLOCK_REASONS: dict[int, tuple[str, bool]] = {
    0x001: ("gpu idle", False),
    0x002: ("applications clocks setting", False),
    0x004: ("power cap", True),
    0x008: ("hw slowdown", True),
    0x010: ("sync boost", False),
    0x020: ("thermal slowdown (sw)", True),
    0x040: ("thermal slowdown (hw)", True),
    0x080: ("power brake (hw)", True),
    0x100: ("display clock setting", False),
    0x200: ("board limit", False),
    0x400: ("reliability", False),
}
READING_WORDS = {
    "power_w": "power",
    "energy_mj": "energy counter",
    "sm_clock_mhz": "SM clock",
    "mem_clock_mhz": "memory clock",
    "temperature_c": "temperature",
    "utilization": "utilization",
    "reasons": "clock-limit reasons",
}
COSTLY_MASK = sum(bit for bit, (_, costly) in CLOCK_REASONS.items() if costly)
GPU_FIELDS = (
    "power_avg_w power_max_w energy_j energy_source joules_per_token sm_clock_mhz_min sm_clock_mhz_max mem_clock_mhz_min"
    " mem_clock_mhz_max temperature_c_min temperature_c_max utilization_gpu_avg throttled throttled_fraction"
).split()


def reason_names(mask: int) -> list[str]:
    """NVML clock-event bits -> names, lowest bit first; bits this table does not know come out as `unknown (0x..)`."""
    names = [name for bit, (name, _) in CLOCK_REASONS.items() if mask & bit]
    unknown = mask & ~sum(CLOCK_REASONS)
    return names + ([f"unknown (0x{unknown:x})"] if unknown else [])


@dataclass(frozen=True)
class GpuSample:
    """One GPU's readings at one instant; None where a reading was unavailable."""

    power_w: float | None = None
    energy_mj: float | None = None  # NVML's counter: millijoules since the driver loaded
    sm_clock_mhz: float | None = None
    mem_clock_mhz: float | None = None
    temperature_c: float | None = None
    utilization: float | None = None  # 0-1
    reasons: int | None = None  # clock-event bits




class GpuReader:
    """One GPU's readings through an NVML-like object (pynvml, or a fake in tests) and its device handle.
    Each reading is tried once up front; one the GPU does not support is dropped, with NVML's answer kept."""

    def __init__(self, nvml: Nvml, handle: NvmlHandle) -> None:
        event_reasons = clock_reasons_reader(nvml, handle)
        reads: dict[str, Callable[[], float]] = {
            "power_w": lambda: nvml.nvmlDeviceGetPowerUsage(handle) / 1000,  # mW
            "energy_mj": lambda: float(nvml.nvmlDeviceGetTotalEnergyConsumption(handle)),
            "sm_clock_mhz": lambda: float(nvml.nvmlDeviceGetClockInfo(handle, NVML_CLOCK_SM)),
            "mem_clock_mhz": lambda: float(nvml.nvmlDeviceGetClockInfo(handle, NVML_CLOCK_MEM)),
            "temperature_c": lambda: float(nvml.nvmlDeviceGetTemperature(handle, NVML_TEMPERATURE_GPU)),
            "utilization": lambda: nvml.nvmlDeviceGetUtilizationRates(handle).gpu / 100,
            "reasons": lambda: int(event_reasons(handle)),
        }
        self.unsupported: dict[str, str] = {}
        self._reads: dict[str, Callable[[], float]] = {}
        for name, read in reads.items():
            try:
                read()
                self._reads[name] = read
            except Exception as e:  # NVMLError_NotSupported and kin: this figure is missing on this GPU
                self.unsupported[name] = str(e) or type(e).__name__
        self.failures = 0  # readings that failed after the probe (transient NVML errors)

    def read(self) -> GpuSample:
        """Every supported reading now; a failed one is None in this sample and never an exception."""
        values: dict[str, Any] = {}  # GpuSample's fields by name: floats, and the reasons' bit mask
        for name, read in self._reads.items():
            try:
                values[name] = read()
            except Exception:  # a sampler must never end a run: lose one value, count it
                self.failures += 1
        return GpuSample(**values)


def clock_reasons_reader(nvml: Nvml, handle: NvmlHandle) -> Callable[[NvmlHandle], int]:
    """NVML's clock-event reasons function that works with this driver. nvml.h renamed "throttle reasons" to
    "clocks event reasons" in R535, and nvidia-ml-py ≥ 12.535 always has the new Python name, but a driver older
    than R535 lacks its C symbol, so calling it raises NVMLError_FunctionNotFound: then the old name is used."""
    names = ("nvmlDeviceGetCurrentClocksEventReasons", "nvmlDeviceGetCurrentClocksThrottleReasons")
    found = [fn for name in names if (fn := getattr(nvml, name, None)) is not None]
    for fn in found:
        try:
            fn(handle)
            return fn
        except Exception:  # noqa: S112 - FunctionNotFound (old driver) or NotSupported: try the older name
            continue
    return found[0] if found else nvml.nvmlDeviceGetCurrentClocksEventReasons  # its error is recorded by the probe


class CpuReader:
    """The CPU's current frequency (cpufreq in /sys, else /proc/cpuinfo) and busy time (/proc/stat), where readable."""

    def __init__(self, root: Path = Path("/"), cpus: Sequence[int] | None = None) -> None:
        self.root = root
        if cpus is None:
            cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        spread = list(cpus)[:: max(1, len(cpus) // MAX_FREQ_FILES)][:MAX_FREQ_FILES]
        files = [root / f"sys/devices/system/cpu/cpu{c}/cpufreq/scaling_cur_freq" for c in spread]
        self._freq_files = [f for f in files if f.exists()]
        self.freq_source = "cpufreq" if self._freq_files else "cpuinfo" if self._cpuinfo_mhz() is not None else None

    def freq_mhz(self) -> float | None:
        """Mean current frequency in MHz over the CPUs read, or None."""
        if self.freq_source == "cpufreq":
            try:
                return statistics.fmean(int(f.read_text()) / 1000 for f in self._freq_files)  # kHz
            except (OSError, ValueError):
                return None
        return self._cpuinfo_mhz() if self.freq_source == "cpuinfo" else None

    def _cpuinfo_mhz(self) -> float | None:
        try:
            text = (self.root / "proc/cpuinfo").read_text()
        except OSError:
            return None
        try:
            mhz = [float(line.split(":", 1)[1]) for line in text.splitlines() if line.startswith("cpu MHz")]
        except ValueError:
            return None
        return statistics.fmean(mhz) if mhz else None

    def busy_total(self) -> tuple[int, int] | None:
        """(busy, total) clock ticks of all CPUs since boot, from the first line of /proc/stat; None where unreadable."""
        try:
            first = (self.root / "proc/stat").read_text().split("\n", 1)[0].split()
            # user nice system idle iowait irq softirq steal (guest time is already inside user)
            ticks = [int(v) for v in first[1:9]] if first[:1] == ["cpu"] else []
        except (OSError, ValueError):
            return None
        if len(ticks) < 4:
            return None
        idle = ticks[3] + (ticks[4] if len(ticks) > 4 else 0)
        return sum(ticks) - idle, sum(ticks)


@dataclass(frozen=True)
class Tick:
    """Everything read at one instant (seconds on the sampler's clock)."""

    t_s: float
    gpus: tuple[GpuSample, ...]
    cpu_mhz: float | None


class TelemetrySampler:
    """A context manager around the measured steps: one sample on entry, one every `interval_s` on a daemon
    thread, and one on exit (also when the steps raise), so the first and last sit on the window's edges."""

    def __init__(
        self,
        gpus: Sequence[GpuReader] = (),
        cpu: CpuReader | None = None,
        interval_s: float = INTERVAL_S,
        no_gpu: str | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.gpus, self.cpu, self.interval_s, self.no_gpu, self._clock = tuple(gpus), cpu, interval_s, no_gpu, clock
        self.ticks: list[Tick] = []
        self.cpu_edges: list[tuple[int, int] | None] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = False
        self._thread: threading.Thread | None = None

    def _read(self) -> Tick:
        return Tick(self._clock(), tuple(g.read() for g in self.gpus), self.cpu.freq_mhz() if self.cpu else None)

    def sample(self) -> None:
        """Take one sample now (the thread calls this, and so does entry)."""
        tick = self._read()
        with self._lock:
            if not self._closed:  # a thread sample that outlived __exit__ would land past the window's end
                self.ticks.append(tick)

    def _loop(self) -> None:
        start, n = self._clock(), 1
        while not self._stop.wait(max(0.0, start + n * self.interval_s - self._clock())):
            self.sample()
            n = max(n + 1, int((self._clock() - start) / self.interval_s) + 1)  # skip slots a slow read overran

    def __enter__(self) -> TelemetrySampler:
        self.cpu_edges.append(self.cpu.busy_total() if self.cpu else None)
        self.sample()
        self._thread = threading.Thread(target=self._loop, name="gptbench-telemetry", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=max(1.0, 10 * self.interval_s))  # a hung NVML call must not hang the run
        last = self._read()
        with self._lock:
            self.ticks.append(last)
            self._closed = True
        self.cpu_edges.append(self.cpu.busy_total() if self.cpu else None)

    def summary(self, tokens: int) -> Telemetry:
        """The report's telemetry section for a window in which `tokens` tokens were processed."""
        return summarize(self, tokens)


def summarize(sampler: TelemetrySampler, tokens: int) -> Telemetry:
    """Averages, ranges, energy and clock limits over the sampler's ticks; every null figure gets its reason."""
    ticks = sorted(sampler.ticks, key=lambda t: t.t_s)
    t = Telemetry(samples=len(ticks), interval_s=sampler.interval_s, gpus=len(sampler.gpus))
    if len(ticks) >= 2:
        t.window_s = ticks[-1].t_s - ticks[0].t_s
    if sampler.gpus:
        _gpu_summary(t, ticks, sampler.gpus, tokens)
    else:
        t.unavailable.update(dict.fromkeys(GPU_FIELDS, sampler.no_gpu or "no GPU was sampled"))
    _cpu_summary(t, ticks, sampler)
    return _rounded(t)


def _values(ticks: list[Tick], name: str) -> list[float]:
    return [v for tick in ticks for g in tick.gpus if (v := getattr(g, name)) is not None]


def _gpu_summary(t: Telemetry, ticks: list[Tick], gpus: Sequence[GpuReader], tokens: int) -> None:
    for name in ("sm_clock_mhz", "mem_clock_mhz", "temperature_c"):
        values = _values(ticks, name)
        if values:
            setattr(t, f"{name}_min", min(values))
            setattr(t, f"{name}_max", max(values))
    utilization = _values(ticks, "utilization")
    t.utilization_gpu_avg = statistics.fmean(utilization) if utilization else None
    powers = [p for tick in ticks if (p := _all_gpus([g.power_w for g in tick.gpus])) is not None]  # one instant
    t.power_max_w = max(powers) if powers else None
    _energy(t, ticks, gpus)
    if t.energy_j is not None and t.window_s:
        t.power_avg_w = t.energy_j / t.window_s
        t.joules_per_token = t.energy_j / tokens if tokens > 0 else None
    if t.energy_source == "counter" and t.power_max_w is not None and t.power_avg_w is not None:
        if t.power_max_w < t.power_avg_w:
            # Seen on an H200 (2026-12-04): 714.5 W from the counter over a 1.05 s window, 691 W the largest reading.
            t.notes.append(
                "power_max_w is the largest of NVML's power readings, each averaged over the last second (Ampere and"
                " newer, NVML nvmlDeviceGetPowerUsage); over a window this short they lag the work, so the energy"
                " counter's average is above them: measure more steps for both to settle"
            )
    _clock_limits(t, ticks)
    _gpu_unavailable(t, gpus, tokens)


def _all_gpus(readings: list[float | None]) -> float | None:
    """The sum of every GPU's reading at one instant, or None when one of them is missing."""
    present = [r for r in readings if r is not None]
    return sum(present) if len(present) == len(readings) else None


def _energy(t: Telemetry, ticks: list[Tick], gpus: Sequence[GpuReader]) -> None:
    """Energy from NVML's counter across the window when every GPU has one, else power integrated over time."""
    edges = [(a.energy_mj, b.energy_mj) for a, b in zip(ticks[0].gpus, ticks[-1].gpus, strict=True)] if ticks else []
    rising = [(a, b) for a, b in edges if a is not None and b is not None and b >= a]
    if len(edges) == len(gpus) and len(rising) == len(edges):
        t.energy_j, t.energy_source = sum(b - a for a, b in rising) / 1000, "counter"  # mJ since boot: take the difference
        return
    timed = [(tick.t_s, p) for tick in ticks if (p := _all_gpus([g.power_w for g in tick.gpus])) is not None]
    if len(timed) >= 2 and timed[-1][0] > timed[0][0]:
        # Trapezoids between samples; where NVML itself averages power over 1 s the figure lags the work a little.
        t.energy_j = sum((t1 - t0) * (p0 + p1) / 2 for (t0, p0), (t1, p1) in pairwise(timed))
        t.energy_source = "integrated"
        t.window_s = timed[-1][0] - timed[0][0]  # the span the integral covers
        no_counter = any("energy_mj" in g.unsupported for g in gpus)
        t.notes.append(
            "GPU has no energy counter: energy integrated from power samples"
            if no_counter
            else "energy counter unreadable at the window's edges: energy integrated from power samples"
        )


def _clock_limits(t: Telemetry, ticks: list[Tick]) -> None:
    masks = [g.reasons for tick in ticks for g in tick.gpus if g.reasons is not None]
    if not masks:
        return
    seen = 0
    for mask in masks:
        seen |= mask
    t.throttle_reasons = reason_names(seen & COSTLY_MASK)
    t.other_clock_reasons = reason_names(seen & ~COSTLY_MASK)
    per_tick = [any(g.reasons is not None and g.reasons & COSTLY_MASK for g in tick.gpus) for tick in ticks]
    t.throttled = bool(seen & COSTLY_MASK)
    t.throttled_fraction = sum(per_tick) / len(per_tick)


def _gpu_unavailable(t: Telemetry, gpus: Sequence[GpuReader], tokens: int) -> None:
    """A reason beside every null GPU figure, from what NVML answered when each reading was probed."""
    missing: dict[str, str] = {}
    for g in gpus:
        for name, why in g.unsupported.items():
            missing.setdefault(name, f"NVML: {why}")
    by_reading = {
        "power_w": ("power_max_w",),
        "sm_clock_mhz": ("sm_clock_mhz_min", "sm_clock_mhz_max"),
        "mem_clock_mhz": ("mem_clock_mhz_min", "mem_clock_mhz_max"),
        "temperature_c": ("temperature_c_min", "temperature_c_max"),
        "utilization": ("utilization_gpu_avg",),
        "reasons": ("throttled", "throttled_fraction"),
    }
    for reading, names in by_reading.items():
        for name in names:
            if getattr(t, name) is None:
                t.unavailable[name] = f"no {READING_WORDS[reading]} reading ({missing.get(reading, 'no sample succeeded')})"
    if t.energy_j is None:
        why = f"no energy counter ({missing.get('energy_mj', 'unreadable at the window edges')}) and " + (
            f"no power readings ({missing['power_w']})" if "power_w" in missing else "too few power samples to integrate"
        )
        for name in ("energy_j", "energy_source", "power_avg_w", "joules_per_token"):
            t.unavailable[name] = why
    elif t.joules_per_token is None:
        t.unavailable["joules_per_token"] = f"no tokens were processed in the window ({tokens})"
    failures = sum(g.failures for g in gpus)
    if failures:
        t.notes.append(f"{failures} NVML readings failed during the run and are missing from their samples")
    if t.window_s is not None and t.window_s < 1.0:
        t.notes.append(
            f"the measured window is {t.window_s:.2f} s, shorter than the 1 s over which NVML averages power on Ampere"
            " and newer GPUs: power and energy are approximate (measure more --steps)"
        )


def _cpu_summary(t: Telemetry, ticks: list[Tick], sampler: TelemetrySampler) -> None:
    mhz = [tick.cpu_mhz for tick in ticks if tick.cpu_mhz is not None]
    t.cpu_freq_mhz_avg = statistics.fmean(mhz) if mhz else None
    cpu = sampler.cpu
    if t.cpu_freq_mhz_avg is None:
        t.unavailable["cpu_freq_mhz_avg"] = "no CPU frequency readable (neither /sys cpufreq nor /proc/cpuinfo)"
    elif cpu is not None and cpu.freq_source == "cpuinfo":
        t.notes.append("CPU frequency from /proc/cpuinfo (no cpufreq here); in a VM it may be the nominal clock")
    edges = sampler.cpu_edges
    first, last = (edges[0], edges[1]) if len(edges) == 2 else (None, None)
    if first is not None and last is not None and last[1] > first[1]:
        t.cpu_load_avg = (last[0] - first[0]) / (last[1] - first[1])
    else:
        t.unavailable["cpu_load_avg"] = "/proc/stat not readable, or no clock tick passed in the window"


def _rounded(t: Telemetry) -> Telemetry:
    """Figures rounded to what the sensors resolve, so reports stay readable."""
    for f in fields(t):
        value = getattr(t, f.name)
        if isinstance(value, float):
            setattr(t, f.name, float(f"{value:.6g}"))
    return t


def sampler_for(device: torch.device, interval_s: float = INTERVAL_S) -> TelemetrySampler:
    """A sampler for a run on `device`: NVML on CUDA where it answers, the CPU everywhere; never an error."""
    cpu = CpuReader()
    if device.type != "cuda":
        why = {"mps": "MPS device (Apple GPUs have no NVML)", "cpu": "CPU run (NVML reads NVIDIA GPUs only)"}
        return TelemetrySampler(cpu=cpu, interval_s=interval_s, no_gpu=f"NVML not available: {why.get(device.type, device.type)}")
    from gptbench.hardware import nvml  # torch comes with it; this module's summaries do not need it

    handle = nvml.nvml_handle(device)
    module, _ = nvml.init_nvml()
    if handle is None or module is None:
        return TelemetrySampler(cpu=cpu, interval_s=interval_s, no_gpu=nvml.nvml_missing_reason())
    return TelemetrySampler([GpuReader(module, handle)], cpu, interval_s)
