"""Was anything else using the device? A benchmark taken while another job shares the GPU or the CPUs measures the
sharing, not the machine. Read before the run starts (other GPU processes and the GPU's utilisation, while this
process has put no work there yet; the load average) and across the measured steps (the CPU time other processes
took), then judged: `busy` and a sentence a reader can act on."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from gptbench.reports.schema import Contention, OtherProcess
from gptbench.reports.text import GB

GPU_BUSY_BEFORE = 0.05  # NVML utilisation before the run above this: something else was running kernels
CPU_OTHERS_SHARE = 0.10  # other processes' share of all CPU time over the window above this: the run shared the CPUs


def gpu_snapshot(
    nvml: Any, handle: Any, own_pid: int | None = None, own_context: bool = False
) -> tuple[list[OtherProcess], float | None, dict[str, str]]:
    """(other compute processes on the GPU, its utilisation 0-1, readings NVML refused or cannot be trusted).
    `nvmlDeviceGetComputeRunningProcesses` lists the processes holding a CUDA context there (NVML API reference).
    In a container their PIDs are the host's, so this process is recognised by its PID only outside one: called
    before this process has a context on the device (`own_context` False), every listed process is another's;
    with a context already open (a DDP rank) and this PID not among them, the list is kept but not judged."""
    own_pid = os.getpid() if own_pid is None else own_pid
    unavailable: dict[str, str] = {}
    others: list[OtherProcess] = []
    try:
        listed = list(nvml.nvmlDeviceGetComputeRunningProcesses(handle))
        for p in listed:
            if p.pid != own_pid:
                used = getattr(p, "usedGpuMemory", None)
                others.append(OtherProcess(pid=int(p.pid), name=_process_name(int(p.pid)), used_gb=_gb(used)))
        if own_context and len(others) == len(listed) and others:
            unavailable["other_gpu_processes"] = (
                "this process already held a CUDA context and NVML lists PIDs from another namespace (a container?): "
                "one of these processes may be this one, so they are listed but not counted"
            )
    except Exception as e:  # noqa: BLE001 - NVML_ERROR_NOT_SUPPORTED and kin: say so, never fail the run
        unavailable["other_gpu_processes"] = f"NVML: {e or type(e).__name__}"
    utilization = None
    try:
        utilization = nvml.nvmlDeviceGetUtilizationRates(handle).gpu / 100
    except Exception as e:  # noqa: BLE001
        unavailable["gpu_utilization_before"] = f"NVML: {e or type(e).__name__}"
    return others, utilization, unavailable


def _gb(used: Any) -> float | None:
    # NVML reports NVML_VALUE_NOT_AVAILABLE (an all-ones unsigned value) where it cannot tell, e.g. without privileges.
    if not isinstance(used, int) or used < 0 or used >= 2**63:
        return None
    return round(used / GB, 3)


def _process_name(pid: int, proc: Path = Path("/proc")) -> str | None:
    try:
        return (proc / str(pid) / "comm").read_text().strip() or None
    except OSError:
        return None  # another container's process, or gone


class CpuShare:
    """Other processes' share of all CPU time between `start()` and `stop()`: the machine's busy time (/proc/stat)
    less this process's own CPU time (all its threads, `os.times`), over the machine's total time."""

    def __init__(self, stat: Callable[[], tuple[int, int] | None], own_cpu_s: Callable[[], float] | None = None) -> None:
        self._stat, self._own = stat, own_cpu_s or _own_cpu_s
        self._ticks_per_s = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._start: tuple[tuple[int, int], float] | None = None
        self.share: float | None = None

    def start(self) -> None:
        edge = self._stat()
        self._start = None if edge is None else (edge, self._own())

    def stop(self) -> None:
        edge = self._stat()
        if self._start is None or edge is None:
            return
        (busy0, total0), own0 = self._start
        busy1, total1 = edge
        if total1 <= total0:
            return
        own_ticks = (self._own() - own0) * self._ticks_per_s
        self.share = max(0.0, min(1.0, (busy1 - busy0 - own_ticks) / (total1 - total0)))


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


def load_before(proc: Path = Path("/proc")) -> tuple[float | None, int | None]:
    """(1-minute load average, runnable tasks other than this one) from /proc/loadavg, where readable."""
    try:
        fields = (proc / "loadavg").read_text().split()
        running = int(fields[3].split("/")[0])
        return float(fields[0]), max(0, running - 1)  # the reader itself is one of the running tasks
    except (OSError, ValueError, IndexError):
        return None, None


def judge(c: Contention) -> Contention:
    """Set `busy` and the warnings from the readings."""
    warnings = []
    if c.other_gpu_processes and "other_gpu_processes" not in c.unavailable:
        shown = ", ".join(
            f"pid {p.pid}" + (f" ({p.name})" if p.name else "") + (f" {p.used_gb:.1f} GB" if p.used_gb else "")
            for p in c.other_gpu_processes[:4]
        )
        warnings.append(f"{len(c.other_gpu_processes)} other process(es) held this GPU when the run started: {shown}")
    if c.gpu_utilization_before is not None and c.gpu_utilization_before > GPU_BUSY_BEFORE:
        warnings.append(f"another process held {c.gpu_utilization_before:.0%} of this GPU just before the run started")
    if c.other_cpu_share is not None and c.other_cpu_share > CPU_OTHERS_SHARE:
        load = f" (load average {c.load_avg_1m_before:.1f} on {c.cpus} CPUs before the run)" if c.load_avg_1m_before else ""
        warnings.append(
            f"other processes used {c.other_cpu_share:.0%} of this machine's CPU time during the measured steps{load}"
        )
    c.warnings, c.busy = warnings, bool(warnings)
    return c


def _has_context(device: Any) -> bool:
    """Whether this process already holds a CUDA context on `device` (a DDP rank does: it set its device)."""
    try:
        import torch

        return bool(torch._C._cuda_hasPrimaryContext(device.index or 0))
    except Exception:  # noqa: BLE001 - a private call: if it is gone, assume the worst
        return True


class ContentionWatch:
    """Made at the start of a run (the GPU readings), wrapped around the measured steps (`around`), read at the end."""

    def __init__(self, device: Any, nvml: Any = None, handle: Any = None) -> None:
        from gptbench.bench.telemetry import CpuReader

        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        load, _ = load_before()
        self.contention = Contention(load_avg_1m_before=load, cpus=cpus)
        if load is None:
            self.contention.unavailable["load_avg_1m_before"] = "/proc/loadavg not readable"
        if getattr(device, "type", None) == "cuda":
            self._read_gpu(device, nvml, handle)
        self._cpu = CpuShare(CpuReader().busy_total)

    def _read_gpu(self, device: Any, nvml: Any, handle: Any) -> None:
        c = self.contention
        if handle is None:
            from gptbench.hardware import nvml as nvml_lib

            handle = nvml_lib.nvml_handle(device)
            if handle is None:
                reason = nvml_lib.nvml_missing_reason()
                c.unavailable["other_gpu_processes"] = c.unavailable["gpu_utilization_before"] = reason
                return
            nvml, _ = nvml_lib.init_nvml()
        c.other_gpu_processes, c.gpu_utilization_before, unavailable = gpu_snapshot(
            nvml, handle, own_context=_has_context(device)
        )
        c.unavailable.update(unavailable)

    def around(self, inner: Any = None) -> Any:
        """A context manager for the measured steps: the CPU-time edges, with `inner` (telemetry) inside them."""
        import contextlib

        @contextlib.contextmanager
        def window() -> Any:
            self.contention.runnable_before = load_before()[1]
            self._cpu.start()
            try:
                with inner or contextlib.nullcontext():
                    yield
            finally:
                self._cpu.stop()

        return window()

    def result(self) -> Contention:
        """The readings, judged."""
        self.contention.other_cpu_share = self._cpu.share
        if self._cpu.share is None:
            self.contention.unavailable["other_cpu_share"] = (
                "/proc/stat not readable, or the measured steps were shorter than one clock tick (10 ms)"
            )
        return judge(self.contention)
