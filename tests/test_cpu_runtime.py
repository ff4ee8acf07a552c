"""The host side of a CPU run: the preloaded allocator (decided, re-executed once, recorded) and intra-op threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gptbench.cli import app, preload
from gptbench.errors import GptbenchError
from gptbench.hardware import allocator
from gptbench.hardware.allocator import REEXEC_ENV, AllocatorStatus, allocator_status, loaded_allocator, plan_allocator
from gptbench.hardware.threads import cores_from_cpuinfo, cores_from_sysfs, default_threads
from gptbench.reports.schema import Report
from gptbench.views.summary import runtime_text

TC = Path("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4")
LIBS = {"tcmalloc": TC, "jemalloc": Path("/usr/lib/x86_64-linux-gnu/libjemalloc.so.2")}
HAS_TCMALLOC = allocator.find_library("tcmalloc") is not None
needs_tcmalloc = pytest.mark.skipif(not HAS_TCMALLOC, reason="no libtcmalloc here (apt-get install libtcmalloc-minimal4)")
TINY = ["run", "--device", "cpu", "--model", "tiny", "--steps", "1", "--warmup", "0"]


def plan(choice: str, cpu: bool = True, environ: dict | None = None, in_use: str = "system", libs: dict | None = None, **kw):
    return plan_allocator(choice, cpu, environ or {}, in_use, LIBS if libs is None else libs, platform="linux", pid=100, **kw)


def test_auto_preloads_tcmalloc_for_a_cpu_run_once() -> None:
    p = plan("auto", environ={"LD_PRELOAD": "/opt/libfoo.so", "PATH": "/bin"})
    assert p.allocator == "tcmalloc" and p.reexec and p.warning is None
    assert p.env["LD_PRELOAD"] == f"{TC}:/opt/libfoo.so" and p.env["PATH"] == "/bin"  # the user's preloads are kept
    assert p.env[REEXEC_ENV] == "100"
    # the re-executed process (same id: execve keeps it) has tcmalloc: nothing more to do
    again = plan("auto", environ=p.env, in_use="tcmalloc")
    assert again.allocator == "tcmalloc" and not again.reexec


def test_the_guard_stops_a_second_reexec_but_not_a_childs() -> None:
    stuck = plan("auto", environ={REEXEC_ENV: "100"})  # re-executed, yet tcmalloc did not load
    assert not stuck.reexec and stuck.allocator == "system" and "did not load" in stuck.warning
    child = plan_allocator("auto", True, {REEXEC_ENV: "100"}, "system", LIBS, platform="linux", pid=200)
    assert child.reexec  # a worker or rank of that process decides for itself


def test_auto_without_tcmalloc_warns_and_keeps_the_system_allocator() -> None:
    p = plan("auto", libs={})
    assert p.allocator == "system" and not p.reexec and "apt-get install libtcmalloc-minimal4" in p.warning


def test_auto_leaves_a_gpu_run_alone() -> None:
    p = plan("auto", cpu=False)
    assert p.allocator == "system" and not p.reexec and p.warning is None


def test_explicit_choices() -> None:
    with pytest.raises(GptbenchError, match="libjemalloc is not installed.*apt-get install libjemalloc2"):
        plan("jemalloc", libs={"tcmalloc": TC})
    with pytest.raises(GptbenchError, match="choose one of auto, system, tcmalloc, jemalloc"):
        plan("mimalloc")
    je = plan("jemalloc")
    assert je.reexec and je.env["LD_PRELOAD"] == str(LIBS["jemalloc"])
    # back to glibc from a process that runs on tcmalloc: re-exec without it
    system = plan("system", environ={"LD_PRELOAD": f"{TC}:/opt/libfoo.so"}, in_use="tcmalloc")
    assert system.reexec and system.env["LD_PRELOAD"] == "/opt/libfoo.so"
    with pytest.raises(GptbenchError, match="Linux only"):
        plan_allocator("tcmalloc", True, {}, "system", LIBS, platform="darwin")


def test_the_allocator_in_use_is_read_from_the_process_maps() -> None:
    maps = "7f0-7f1 r-xp 00000000 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
    assert loaded_allocator(maps) == ("system", None)
    tc = maps + f"7f2-7f3 r-xp 00000000 08:01 2 {TC}\n"
    assert loaded_allocator(tc) == ("tcmalloc", str(TC))


def test_libraries_are_found_by_their_distribution_names(tmp_path: Path) -> None:
    (tmp_path / "libjemalloc.so.2").write_bytes(b"")
    assert allocator.installed({}, [tmp_path]) == {"jemalloc": tmp_path / "libjemalloc.so.2"}
    assert allocator.find_library("tcmalloc", {}, [tmp_path]) is None


def test_allocator_status_for_doctor(monkeypatch: pytest.MonkeyPatch) -> None:
    status = allocator_status()
    assert isinstance(status, AllocatorStatus) and status.in_use in ("system", "tcmalloc", "jemalloc")
    monkeypatch.setattr(allocator, "installed", lambda *a: {})
    missing = allocator_status()
    assert missing.installed == {} and missing.install_command == "apt-get install libtcmalloc-minimal4"


def test_reexec_keeps_the_command_line_and_only_happens_in_the_commands_own_process(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setattr(allocator, "installed", lambda *a: LIBS)
    monkeypatch.setattr(allocator, "allocator_in_use", lambda: ("system", None))
    monkeypatch.setattr(sys, "orig_argv", ["python3", "-m", "gptbench", "run", "--device", "cpu"])
    monkeypatch.setitem(preload._entry, "reexec_allowed", False)
    preload.prepare_allocator("auto", "cpu", lambda *a: calls.append(a))
    assert calls == []  # in-process (CliRunner, a library caller): never replaces the caller's process
    monkeypatch.setitem(preload._entry, "reexec_allowed", True)
    preload.prepare_allocator("auto", "cpu", lambda *a: calls.append(a))
    ((exe, argv, env),) = calls
    assert exe == sys.executable and argv == [sys.executable, "-m", "gptbench", "run", "--device", "cpu"]
    assert env["LD_PRELOAD"].startswith(str(TC)) and env[REEXEC_ENV] == str(os.getpid())
    calls.clear()
    preload.prepare_allocator("auto", "cuda", lambda *a: calls.append(a))
    assert calls == []


def test_a_missing_explicit_allocator_is_one_line_and_exit_2(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(allocator, "installed", lambda *a: {})
    result = CliRunner().invoke(app, [*TINY, "--allocator", "jemalloc", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "libjemalloc is not installed" in result.output
    assert len(result.output.strip().splitlines()) == 1 and not list(tmp_path.iterdir())


def test_physical_cores_count_cores_not_hyperthreads() -> None:
    topology = {0: ("0", "0"), 1: ("0", "1"), 2: ("0", "0"), 3: ("0", "1"), 4: ("1", "0")}  # cpu -> (package, core)

    def read(path: Path) -> str:
        package, core = topology[int(path.parent.parent.name[3:])]
        return core if path.name == "core_id" else package

    assert cores_from_sysfs([0, 1, 2, 3], read) == 2  # two cores, two hyper-threads each
    assert cores_from_sysfs([0, 2], read) == 1  # a CPU set holding one core's two threads
    assert cores_from_sysfs([0, 4], read) == 2  # core 0 of two packages are two cores
    cpuinfo = "".join(f"processor\t: {c}\nphysical id\t: {p}\ncore id\t\t: {k}\n\n" for c, (p, k) in topology.items())
    assert cores_from_cpuinfo(range(5), cpuinfo) == 3 and cores_from_cpuinfo([1, 3], cpuinfo) == 1
    assert cores_from_cpuinfo([0], "processor\t: 0\n") is None  # no topology: the caller falls back


def test_default_threads_are_shared_among_local_ranks() -> None:
    assert default_threads({}, cores=8) == 8
    assert default_threads({"LOCAL_WORLD_SIZE": "2"}, cores=8) == 4
    assert default_threads({"LOCAL_WORLD_SIZE": "4"}, cores=2) == 1


def test_threads_reach_the_report_and_bad_values_are_refused(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(app, [*TINY, "--threads", "1", "--allocator", "system", "--json", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["runs"][0]["config"]["threads"] == 1 and report["machine"]["cpu"]["physical_cores"] >= 1
    bad = runner.invoke(app, [*TINY, "--threads", "0", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "--threads 0: give a whole number from 1 to" in bad.output


def test_reports_without_the_new_fields_still_load() -> None:
    old = {"machine": {"cpu": {"model": "x", "cores": 4}}, "runs": []}
    report = Report.from_dict(old)
    assert report.machine.allocator is None and report.machine.cpu.physical_cores is None


@needs_tcmalloc
def test_the_command_restarts_itself_on_tcmalloc_and_keeps_exit_codes(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "gptbench", *TINY, "--json", "--out", str(tmp_path)]
    env = {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", REEXEC_ENV)}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, cwd=Path(__file__).parents[1])
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["machine"]["allocator"] == "tcmalloc" and report["runs"][0]["config"]["allocator"] == "tcmalloc"
    assert "tcmalloc" in runtime_text(Report.from_dict(report), Report.from_dict(report).runs[0])
    # an error after the restart still leaves as one line and exit code 2
    bad = subprocess.run([*cmd, "--batch", "0"], capture_output=True, text=True, env=env, check=False)
    refused = ["error: --batch 0: give a whole number from 1 to 1,000,000, or auto"]
    assert bad.returncode == 2 and bad.stderr.strip().splitlines() == refused


def test_compare_shows_the_allocator_and_threads(tmp_path: Path) -> None:
    from report_fixtures import laptop

    from gptbench.reports.store import write_report
    from gptbench.views.load import find_column, load_runs, records

    old, new = laptop(), laptop()
    new.label, new.runs[0].config.allocator, new.runs[0].config.threads = "new", "tcmalloc", 2
    for report in (old, new):
        write_report(report, tmp_path)
    rows = records(load_runs([tmp_path]).frame)
    column = find_column("allocator")
    cells = sorted(column.cell(row) for row in rows)
    assert cells == ["n/a", "tcmalloc · 2 thr"]  # a report from before the field reads n/a


def test_allocator_rung_says_why_it_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    from gptbench.bench.config import RunOptions, resolve_config
    from gptbench.studies import ablate

    config = resolve_config(RunOptions(device="cpu", model="tiny", allocator="system"))
    rung = next(p for p in ablate.plan_ladder(config) if p.name == "+ tcmalloc")
    if HAS_TCMALLOC:
        assert rung.skipped == "the system allocator was asked for (--allocator system)"
    monkeypatch.setattr(ablate, "find_library", lambda name: None)
    rung = next(p for p in ablate.plan_ladder(config) if p.name == "+ tcmalloc")
    assert rung.skipped == "libtcmalloc is not installed here: apt-get install libtcmalloc-minimal4"
