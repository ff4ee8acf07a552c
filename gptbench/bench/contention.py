"""Was anything else using the device? A benchmark taken while another job shares the GPU or the CPUs measures the
sharing, not the machine. Read before the run starts (other GPU processes and the GPU's utilisation, while this
process has put no work there yet; the load average) and across the measured steps (the CPU time other processes
took), then judged: `busy` and a sentence a reader can act on."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Collection, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from gptbench.hardware.threads import usable_cpus
from gptbench.reports.schema import Contention, OtherProcess
from gptbench.reports.text import GB

if TYPE_CHECKING:
    import torch

    from gptbench.hardware.nvml import Nvml, NvmlHandle

GPU_BUSY_BEFORE = 0.05  # NVML utilisation before the run above this: something else was running kernels
MACHINE_WIDE = "this machine's CPU time"  # reports written before cpu_basis was recorded
CPU_OTHERS_SHARE = 0.10  # other processes' share of all CPU time over the window above this: the run shared the CPUs


def gpu_snapshot(
    nvml: Nvml, handle: NvmlHandle, own_pid: int | None = None, own_context: bool = False
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


def _gb(used: object) -> float | None:
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
    """Other processes' share of the CPU time this run could use between `start()` and `stop()`: the busy seconds
    `read` reports (this process included) less this process's own CPU time (all its threads, `os.times`), over
    the seconds of capacity it reports. `CpuScope` says whose CPU time that is."""

    def __init__(self, read: Callable[[], tuple[float, float] | None], own_cpu_s: Callable[[], float] | None = None) -> None:
        self._read, self._own = read, own_cpu_s or _own_cpu_s
        self._start: tuple[tuple[float, float], float] | None = None
        self.share: float | None = None

    def start(self) -> None:
        edge = self._read()
        self._start = None if edge is None else (edge, self._own())

    def stop(self) -> None:
        edge = self._read()
        if self._start is None or edge is None:
            return
        (busy0, total0), own0 = self._start
        busy1, total1 = edge
        if total1 <= total0:
            return
        self.share = max(0.0, min(1.0, (busy1 - busy0 - (self._own() - own0)) / (total1 - total0)))


def _own_cpu_s() -> float:
    t = os.times()
    return t.user + t.system


@dataclass(frozen=True)
class CpuScope:
    """The CPU time a run competes for, and how to read it: `read()` -> (busy s, capacity s) or None."""

    basis: str  # in words, for the warning: whose CPU time the share is of
    read: Callable[[], tuple[float, float] | None]


def _ticks_per_s() -> int:
    return os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpuset_seconds(cpus: Collection[int], root: Path = Path("/")) -> tuple[float, float] | None:
    """(busy, total) seconds since boot of the CPUs in `cpus`, from their own lines of /proc/stat (`cpuN user nice
    system idle iowait irq softirq steal ...`, USER_HZ ticks; proc(5)); None where unreadable."""
    try:
        lines = (root / "proc/stat").read_text().splitlines()
    except OSError:
        return None
    busy = total = 0
    seen = 0
    for line in lines:
        name, *fields = line.split()
        if not (name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus):
            continue
        ticks = [int(v) for v in fields[:8]]  # guest time is already inside user
        total += sum(ticks)
        busy += sum(ticks) - ticks[3] - (ticks[4] if len(ticks) > 4 else 0)  # less idle and iowait
        seen += 1
    if seen == 0:
        return None
    hz = _ticks_per_s()
    return busy / hz, total / hz


def cgroup_dir(root: Path = Path("/")) -> Path | None:
    """This process's cgroup v2 directory (the `0::/path` line of /proc/self/cgroup, under /sys/fs/cgroup) where it
    has a cpu.stat; None on cgroup v1 or without one."""
    try:
        lines = (root / "proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        if line.startswith("0::"):
            folder = root / "sys/fs/cgroup" / line[3:].strip().lstrip("/")
            return folder if (folder / "cpu.stat").is_file() else None
    return None


def cgroup_quota_cpus(folder: Path) -> float | None:
    """The cgroup's CPU quota in CPUs (cpu.max `QUOTA PERIOD`), or None where there is none (`max`) or no file."""
    try:
        quota, period = (folder / "cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        return None


def cgroup_usage_s(folder: Path) -> float | None:
    """CPU seconds used by every process of the cgroup (cpu.stat `usage_usec`), or None."""
    try:
        for line in (folder / "cpu.stat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                return int(value) / 1e6
    except (OSError, ValueError):
        return None
    return None


def cpu_scope(
    root: Path = Path("/"), cpus: Collection[int] | None = None, clock: Callable[[], float] = time.monotonic
) -> CpuScope:
    """Under a cgroup v2 CPU quota smaller than the CPU set (a container given `--cpus`): the cgroup's own usage
    against the quota, since the host's /proc/stat counts other containers' work that the quota, not the CPUs,
    limits. Else the CPUs of this process's CPU set (os.sched_getaffinity), from their own /proc/stat lines:
    machine-wide figures count CPUs this run never touches."""
    if cpus is None:
        cpus = usable_cpus()
    folder = cgroup_dir(root)
    quota = cgroup_quota_cpus(folder) if folder is not None else None
    if folder is not None and quota is not None and quota < len(cpus):

        def read_cgroup() -> tuple[float, float] | None:
            used = cgroup_usage_s(folder)
            return None if used is None else (used, clock() * quota)

        return CpuScope(f"this container's CPU quota ({quota:g} CPUs, cgroup cpu.stat)", read_cgroup)
    chosen = frozenset(cpus)
    return CpuScope(f"the CPU time of the {len(chosen)} CPUs this process may run on", lambda: cpuset_seconds(chosen, root))


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
            f"other processes used {c.other_cpu_share:.0%} of {c.cpu_basis or MACHINE_WIDE}"
            f" during the measured steps{load}"
        )
    c.warnings, c.busy = warnings, bool(warnings)
    return c


def _has_context(device: torch.device) -> bool:
    """Whether this process already holds a CUDA context on `device` (a DDP rank does: it set its device)."""
    try:
        import torch

        return bool(torch._C._cuda_hasPrimaryContext(device.index or 0))  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - a private call: if it is gone, assume the worst
        return True


class ContentionWatch:
    """Made at the start of a run (the GPU readings), wrapped around the measured steps (`around`), read at the end."""

    def __init__(self, device: torch.device, nvml: Nvml | None = None, handle: NvmlHandle | None = None) -> None:
        cpus = len(usable_cpus())
        load, _ = load_before()
        self.contention = Contention(load_avg_1m_before=load, cpus=cpus)
        if load is None:
            self.contention.unavailable["load_avg_1m_before"] = "/proc/loadavg not readable"
        if getattr(device, "type", None) == "cuda":
            self._read_gpu(device, nvml, handle)
        scope = cpu_scope()
        self.contention.cpu_basis = scope.basis
        self._cpu = CpuShare(scope.read)

    def _read_gpu(self, device: torch.device, nvml: Nvml | None, handle: NvmlHandle | None) -> None:
        c = self.contention
        if handle is None or nvml is None:
            from gptbench.hardware import nvml as nvml_lib

            handle = nvml_lib.nvml_handle(device)
            nvml, _ = nvml_lib.init_nvml()
            if handle is None or nvml is None:
                reason = nvml_lib.nvml_missing_reason()
                c.unavailable["other_gpu_processes"] = c.unavailable["gpu_utilization_before"] = reason
                return
        c.other_gpu_processes, c.gpu_utilization_before, unavailable = gpu_snapshot(
            nvml, handle, own_context=_has_context(device)
        )
        c.unavailable.update(unavailable)

    def around(self, inner: AbstractContextManager[object] | None = None) -> AbstractContextManager[None]:
        """A context manager for the measured steps: the CPU-time edges, with `inner` (telemetry) inside them."""
        import contextlib

        @contextlib.contextmanager
        def window() -> Iterator[None]:
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
                "/proc/stat (or the cgroup's cpu.stat) not readable, or the measured steps were shorter than one clock tick"
            )
        return judge(self.contention)
