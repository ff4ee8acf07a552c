"""How many intra-op threads a CPU run uses: one per physical core of the process's CPU set, not per hyper-thread.

Two hyper-threads of one core share its vector units, so a second matmul thread on the same core adds contention,
not FLOPs; PyTorch's CPU launcher (torch/backends/xeon/run_cpu.py, `_CPUinfo` and `launch`) likewise sets
OMP_NUM_THREADS to the physical cores it binds to. torch's own default is also one per physical core (c10's
TaskThreadPoolBase::defaultNumThreads counts cpuinfo's cores, MKL's mkl_get_max_threads likewise), but counted on
the whole machine where the build does not look at the CPU set; what gptbench adds is counting the cores of this
process's CPU set on every build, and sharing them among the ranks on one machine.
Torch-free: topology comes from /sys (Linux), then /proc/cpuinfo, then the logical count.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

SYS_CPU = Path("/sys/devices/system/cpu")


def usable_cpus() -> set[int]:
    """The logical CPUs this process may run on (its affinity mask; all of them where the OS has no such call)."""
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return set(range(os.cpu_count() or 1))


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def cores_from_sysfs(cpus: Iterable[int], read: Callable[[Path], str | None] = _read, root: Path = SYS_CPU) -> int | None:
    """Distinct (package, core) pairs among `cpus`, from /sys/devices/system/cpu/cpuN/topology; None if unreadable."""
    cores = set()
    for cpu in cpus:
        topology = root / f"cpu{cpu}" / "topology"
        core, package = read(topology / "core_id"), read(topology / "physical_package_id")
        if core is None or package is None:
            return None
        cores.add((package, core))
    return len(cores) or None


def cores_from_cpuinfo(cpus: Iterable[int], text: str) -> int | None:
    """Distinct (physical id, core id) pairs among `cpus` in /proc/cpuinfo's text; None if it does not say."""
    wanted, cores, fields = set(cpus), set[tuple[str, str]](), dict[str, str]()
    for line in [*text.splitlines(), ""]:
        if not line.strip():  # a blank line ends one processor's block
            if {"processor", "core id"} <= fields.keys() and int(fields["processor"]) in wanted:
                cores.add((fields.get("physical id", "0"), fields["core id"]))
            fields = {}
            continue
        key, _, value = line.partition(":")
        fields[key.strip()] = value.strip()
    return len(cores) or None


def physical_cores(cpus: Iterable[int] | None = None) -> int:
    """Physical cores under the logical CPUs `cpus` (default: this process's CPU set); at least 1."""
    cpus = sorted(usable_cpus() if cpus is None else cpus)
    found = cores_from_sysfs(cpus)
    if found is None:
        text = _read(Path("/proc/cpuinfo"))
        found = cores_from_cpuinfo(cpus, text) if text else None
    return max(1, found if found is not None else len(cpus))  # no topology known: one thread per logical CPU


def default_threads(environ: dict[str, str] | None = None, cores: int | None = None) -> int:
    """Intra-op threads for a CPU run: the physical cores, shared out among the local ranks of a multi-process
    run (torchrun sets LOCAL_WORLD_SIZE), so that two ranks on one machine do not each take every core."""
    env = os.environ if environ is None else environ
    ranks = int(env.get("LOCAL_WORLD_SIZE", "1") or 1)
    return max(1, (physical_cores() if cores is None else cores) // max(1, ranks))
