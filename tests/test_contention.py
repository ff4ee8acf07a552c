"""Fair measurements: what else used the GPU or the CPUs around a run, judged and shown (summary, compare).
The fake NVML answers the way nvmlDeviceGetComputeRunningProcesses and nvmlDeviceGetUtilizationRates do (NVML API
reference): a list of objects with `pid` and `usedGpuMemory` in bytes, and `gpu` utilisation in percent."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest

from gptbench.bench.contention import (
    ContentionWatch,
    CpuShare,
    cgroup_dir,
    cpu_scope,
    cpuset_seconds,
    gpu_snapshot,
    judge,
    load_before,
)
from gptbench.reports.schema import Contention


class Nvml:
    def __init__(self, pids: list[int], util_pct: int, used: int = 20 * 10**9) -> None:
        self.pids, self.util_pct, self.used = pids, util_pct, used

    def nvmlDeviceGetComputeRunningProcesses(self, handle: object) -> list[SimpleNamespace]:
        return [SimpleNamespace(pid=p, usedGpuMemory=self.used) for p in self.pids]

    def nvmlDeviceGetUtilizationRates(self, handle: object) -> SimpleNamespace:
        return SimpleNamespace(gpu=self.util_pct, memory=0)


def test_another_process_on_the_gpu_is_named_and_flagged() -> None:
    others, util, unavailable = gpu_snapshot(Nvml([4242, 777], 35), object(), own_pid=777)
    assert [p.pid for p in others] == [4242] and others[0].used_gb == 20.0 and util == 0.35 and not unavailable
    c = judge(Contention(other_gpu_processes=others, gpu_utilization_before=util))
    assert c.busy
    assert "1 other process(es) held this GPU when the run started: pid 4242" in c.warnings[0]
    assert c.warnings[1] == "another process held 35% of this GPU just before the run started"


def test_processes_that_may_include_this_one_are_listed_but_not_counted() -> None:
    """A DDP rank already holds a context; in a container NVML's PIDs are the host's, so none matches ours."""
    others, _, unavailable = gpu_snapshot(Nvml([90001], 0), object(), own_pid=12, own_context=True)
    c = judge(Contention(other_gpu_processes=others, gpu_utilization_before=0.0, unavailable=unavailable))
    assert [p.pid for p in others] == [90001] and "may be this one" in unavailable["other_gpu_processes"] and not c.busy


def test_a_quiet_gpu_is_not_flagged_and_a_refusing_nvml_is_explained() -> None:
    watch = ContentionWatch(SimpleNamespace(type="cuda"), nvml=Nvml([], 0), handle=object())
    assert watch.contention.other_gpu_processes == [] and watch.contention.gpu_utilization_before == 0.0

    class Refuses(Nvml):
        def nvmlDeviceGetComputeRunningProcesses(self, handle: object) -> list:
            raise RuntimeError("Not Supported")

    others, _, unavailable = gpu_snapshot(Refuses([], 0), object())
    assert others == [] and unavailable == {"other_gpu_processes": "NVML: Not Supported"}


def test_cpu_time_of_other_processes_over_the_window() -> None:
    """Busy seconds of the CPUs in scope less this process's own CPU time, over their capacity."""
    edges = iter([(10.0, 100.0), (19.0, 110.0)])  # +9 s busy of +10 s
    own = iter([5.0, 10.0])  # this process: 5 s of CPU
    share = CpuShare(lambda: next(edges), lambda: next(own))
    share.start()
    share.stop()
    assert share.share == pytest.approx(0.4)
    c = judge(Contention(other_cpu_share=share.share, load_avg_1m_before=3.2, cpus=2, cpu_basis="the CPU time of 2 CPUs"))
    expected = "other processes used 40% of the CPU time of 2 CPUs during the measured steps"
    assert c.busy and c.warnings == [expected + " (load average 3.2 on 2 CPUs before the run)"]
    assert not judge(Contention(other_cpu_share=0.05)).busy


# /proc/stat of a 4-CPU host (proc(5): cpuN user nice system idle iowait irq softirq steal guest guest_nice, in USER_HZ)
# at two moments 10 s apart (1000 ticks per CPU at 100 Hz): CPUs 0-1 (this process's CPU set) mostly idle,
# CPUs 2-3 busy with another job.
STAT_BEFORE = """cpu  4000 0 1000 15000 0 0 0 0 0 0
cpu0 500 0 100 4400 0 0 0 0 0 0
cpu1 500 0 100 4400 0 0 0 0 0 0
cpu2 1500 0 400 3100 0 0 0 0 0 0
cpu3 1500 0 400 3100 0 0 0 0 0 0
intr 0
"""
STAT_AFTER = """cpu  5800 0 1400 16800 0 0 0 0 0 0
cpu0 600 0 100 5300 0 0 0 0 0 0
cpu1 600 0 100 5300 0 0 0 0 0 0
cpu2 2300 0 600 3100 0 0 0 0 0 0
cpu3 2300 0 600 3100 0 0 0 0 0 0
intr 0
"""


def _root(tmp_path: Path, stat: str, cgroup: str = "0::/\n", cpu_stat: str | None = None, cpu_max: str | None = None) -> Path:
    (tmp_path / "proc/self").mkdir(parents=True, exist_ok=True)
    (tmp_path / "proc/stat").write_text(stat)
    (tmp_path / "proc/self/cgroup").write_text(cgroup)
    folder = tmp_path / "sys/fs/cgroup" / cgroup.strip().removeprefix("0::/")
    folder.mkdir(parents=True, exist_ok=True)
    if cpu_stat is not None:
        (folder / "cpu.stat").write_text(cpu_stat)
    if cpu_max is not None:
        (folder / "cpu.max").write_text(cpu_max)
    return tmp_path


def test_a_cpu_set_is_judged_on_its_own_cpus(tmp_path: Path) -> None:
    """Pinned to CPUs 0-1 while another job keeps CPUs 2-3 busy: the machine-wide first line (what was read before)
    says others took 50% of all CPU time, a false alarm; the CPU set's own lines say 0% besides this process."""
    hz = os.sysconf("SC_CLK_TCK")
    root = _root(tmp_path, STAT_BEFORE)
    scope = cpu_scope(root, cpus={0, 1})
    assert scope.basis == "the CPU time of the 2 CPUs this process may run on"
    own = iter([0.0, 200 / hz])  # this process: the 200 busy ticks of CPUs 0-1
    share = CpuShare(scope.read, lambda: next(own))
    share.start()
    (root / "proc/stat").write_text(STAT_AFTER)
    share.stop()
    assert share.share == pytest.approx(0.0)
    machine = [(4000 + 1000, 20000), (5800 + 1400, 24000)]  # the old reading: busy, total of the first line
    assert ((machine[1][0] - machine[0][0]) - 200) / (machine[1][1] - machine[0][1]) == pytest.approx(0.5)
    assert cpuset_seconds({2, 3}, root) == pytest.approx((5800 / hz, 12000 / hz))
    assert cpuset_seconds({7}, root) is None  # a CPU /proc/stat does not list: unreadable, not zero


def test_a_cgroup_quota_is_judged_on_the_cgroups_own_usage(tmp_path: Path) -> None:
    """In a container given 2 CPUs' quota on a 4-CPU host that another container keeps busy: the host's /proc/stat
    would blame the neighbour; the cgroup's cpu.stat says what the processes of this container used of the quota."""
    cgroup = "0::/docker/abc123\n"
    root = _root(tmp_path, STAT_BEFORE, cgroup, "usage_usec 1000000\nuser_usec 800000\n", "150000 100000\n")
    assert cgroup_dir(root) == root / "sys/fs/cgroup/docker/abc123"
    clock = iter([100.0, 110.0])
    scope = cpu_scope(root, cpus={0, 1, 2, 3}, clock=lambda: next(clock))
    assert scope.basis == "this container's CPU quota (1.5 CPUs, cgroup cpu.stat)"
    own = iter([0.0, 9.0])  # this process: 9 of the cgroup's 12 CPU seconds over the 10 s window
    share = CpuShare(scope.read, lambda: next(own))
    share.start()
    (root / "sys/fs/cgroup/docker/abc123/cpu.stat").write_text("usage_usec 13000000\n")
    share.stop()
    assert share.share == pytest.approx(3 / 15)  # 3 s of others in the container over 1.5 CPUs x 10 s


def test_without_a_quota_or_on_cgroup_v1_the_cpu_set_is_used(tmp_path: Path) -> None:
    no_quota = _root(tmp_path / "a", STAT_BEFORE, "0::/user.slice\n", "usage_usec 5\n", "max 100000\n")
    assert cpu_scope(no_quota, cpus={0, 1}).basis.endswith("2 CPUs this process may run on")
    v1 = _root(tmp_path / "b", STAT_BEFORE, "12:cpu,cpuacct:/docker/abc\n")
    assert cgroup_dir(v1) is None and "CPUs this process may run on" in cpu_scope(v1, cpus={0}).basis


def test_load_before_reads_proc_loadavg(tmp_path: Path) -> None:
    (tmp_path / "loadavg").write_text("1.50 0.80 0.40 3/812 12345\n")
    assert load_before(tmp_path) == (1.5, 2)
    assert load_before(tmp_path / "missing") == (None, None)


def test_a_run_records_its_contention_and_a_busy_run_is_marked_in_compare(tmp_path: Path) -> None:
    from gptbench.bench.config import RunOptions, resolve_config
    from gptbench.bench.runner import run_benchmark
    from gptbench.reports.store import write_report
    from gptbench.views.compare import CompareOptions, compare
    from gptbench.views.compare_table import cells, footnotes
    from gptbench.views.load import load_runs
    from tests.report_fixtures import rtx3090

    config = resolve_config(RunOptions(device="cpu", model="tiny", seq_len=16, micro_batch=1, steps=4, warmup_steps=0))
    c = run_benchmark(config).result.contention
    assert c is not None and c.cpus
    if c.other_cpu_share is None:  # a window shorter than /proc/stat's clock tick: said, not guessed
        assert "shorter than one clock tick" in c.unavailable["other_cpu_share"]
    else:
        assert 0 <= c.other_cpu_share <= 1

    busy = rtx3090()
    busy.runs[0].result.contention = judge(Contention(gpu_utilization_before=0.35))
    paths = [write_report(rtx3090(), tmp_path), write_report(busy, tmp_path)]
    comparison = compare(load_runs([str(p) for p in paths]), CompareOptions())
    rows = comparison.frame.to_dict("records")
    texts = [" ".join(cells(comparison, row)) for row in rows]
    assert "60,000 (busy)" in texts[1] and "(busy)" not in texts[0]
    assert any("(busy): measured while the device was shared: another process held 35%" in line for line in footnotes(comparison))
