"""Fair measurements: what else used the GPU or the CPUs around a run, judged and shown (summary, compare).
The fake NVML answers the way nvmlDeviceGetComputeRunningProcesses and nvmlDeviceGetUtilizationRates do (NVML API
reference): a list of objects with `pid` and `usedGpuMemory` in bytes, and `gpu` utilisation in percent."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from gptbench.bench.contention import ContentionWatch, CpuShare, gpu_snapshot, judge, load_before
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
    """Busy ticks of the machine less this process's own CPU time, over all ticks (/proc/stat is in USER_HZ)."""
    edges = iter([(1000, 10_000), (1900, 11_000)])  # +900 busy of +1000 ticks
    own = iter([5.0, 10.0])  # this process: 5 s of CPU = 500 ticks at 100 Hz
    share = CpuShare(lambda: next(edges), lambda: next(own))
    share._ticks_per_s = 100
    share.start()
    share.stop()
    assert share.share == 0.4
    c = judge(Contention(other_cpu_share=share.share, load_avg_1m_before=3.2, cpus=2))
    expected = "other processes used 40% of this machine's CPU time during the measured steps"
    assert c.busy and c.warnings == [expected + " (load average 3.2 on 2 CPUs before the run)"]
    assert not judge(Contention(other_cpu_share=0.05)).busy


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
