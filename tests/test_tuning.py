"""Issue 5 on the CPU with the tiny preset: sweeps keep finished runs, the ladder changes one switch per rung,
the batch search respects a memory limit, and the measured peak feeds MFU."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from typer.testing import CliRunner

from gptbench.bench.config import RunOptions, resolve_config
from gptbench.bench.runner import new_report
from gptbench.cli import app
from gptbench.cli.options import parse_list, parse_size_gb
from gptbench.errors import GptbenchError
from gptbench.hardware.allocator import find_library
from gptbench.hardware.capability import compile_problem, supports_fused_adamw
from gptbench.hardware.device import has_fast_bf16
from gptbench.hardware.peak import attach_measured_peak, measure_matmul, newest_peak_for
from gptbench.reports.schema import MeasuredPeak
from gptbench.reports.store import load_report, write_report
from gptbench.studies.ablate import FRONTIER, LARGEST_BATCH, RUNGS, baseline, ladder_items, ladder_rungs, plan_ladder
from gptbench.studies.autobatch import auto_batch, probe
from gptbench.studies.series import run_series
from gptbench.studies.sweep import plan_sweep, sweep_items

TINY = RunOptions(device="cpu", model="tiny", seq_len=16, steps=1, warmup_steps=1)
HUGE_BATCH = 16_777_216  # its synthetic tokens alone need 9 GB per copy: allocation fails at once, a real CPU OOM
runner = CliRunner()


def test_sweep_keeps_finished_runs_when_a_later_one_fails(tmp_path: Path) -> None:
    plan = plan_sweep(TINY, {"micro_batch": [1, HUGE_BATCH], "seq_len": None})
    report = new_report(torch.device("cpu"), "sweep")
    file = run_series(sweep_items(plan), report, str(tmp_path))
    runs = load_report(file.path).runs
    assert [r.name for r in runs] == ["batch=1", f"batch={HUGE_BATCH}"]
    assert runs[0].result.status == "ok" and runs[0].result.tokens_per_sec > 0
    assert runs[1].result.status == "oom" and "allocate" in runs[1].result.error


def test_interrupted_sweep_keeps_what_finished(tmp_path: Path) -> None:
    plan = plan_sweep(TINY, {"micro_batch": [1, 2, 3]})
    report = new_report(torch.device("cpu"), "sweep")

    def stop_after_first(run: object) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_series(sweep_items(plan), report, str(tmp_path), on_run=stop_after_first)
    (path,) = tmp_path.iterdir()
    assert len(load_report(path).runs) == 1


def test_sweep_cli_marks_the_fastest_and_refuses_bad_lists(tmp_path: Path) -> None:
    args = ["sweep", "--device", "cpu", "--model", "tiny", "--seq", "8,16", "--steps", "1", "--warmup", "0"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert "fastest" in result.stdout and "seq=8" in result.stdout and "seq=16" in result.stdout
    bad = runner.invoke(app, ["sweep", "--device", "cpu", "--model", "tiny", "--batch", "4,x", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "'x' is not a whole number from 1 to" in bad.stderr
    too_long = runner.invoke(app, ["sweep", "--device", "cpu", "--model", "tiny", "--seq", "64,4096", "--out", str(tmp_path)])
    assert too_long.exit_code == 2 and "sweep point seq=4096" in too_long.stderr


def test_parse_list() -> None:
    assert parse_list("compile", "on,off,on", bool) == [True, False]
    assert parse_list("batch", "4, 8,16", int) == [4, 8, 16]
    with pytest.raises(GptbenchError, match="use on or off"):
        parse_list("compile", "maybe", bool)


def _differences(a: object, b: object) -> set[str]:
    diff = {f.name for f in dataclasses.fields(a) if getattr(a, f.name) != getattr(b, f.name)}
    if "model" in diff:
        diff = (diff - {"model"}) | {f"model.{k}" for k in _differences(a.model, b.model)}
    return diff


RUNG_FIELD = {
    "TF32": "tf32",
    "fused AdamW": "adamw",
    "bf16": "dtype",
    "tcmalloc": "allocator",
    "threads": "threads",
    "SDPA": "attention",
    "torch.compile": "compile",
    "vocabulary": "model.vocab_size",
    "cross-entropy": "loss",
    "FP8": "fp8",
    "autotuned": "compile_mode",
    "CUDA graphs": "compile_mode",
    LARGEST_BATCH: "micro_batch",
}


def test_each_rung_changes_exactly_the_switch_it_names() -> None:
    config = resolve_config(RunOptions(device="cpu", model="tiny"))
    config = dataclasses.replace(config, threads=config.threads + 1)  # so that the threads rung applies on any CPU
    items = ladder_items(config, largest_batch=8)
    assert len(items) == len(ladder_rungs(config)) + 1 == len(RUNGS) + 3  # the CPU ladder adds tcmalloc and threads
    first = items[0].config
    assert (first.dtype, first.attention, first.adamw, first.compile, first.model.vocab_size, first.allocator, first.threads) == (
        "fp32", "naive", "for-loop", False, 50257, "system", None
    )  # fmt: skip
    for previous, item in zip(items, items[1:], strict=False):
        (expected,) = [field for key, field in RUNG_FIELD.items() if key in item.name]
        changed = _differences(previous.config, item.config)
        if item.skipped:
            assert changed == set() and item.skipped
        else:
            assert changed == {expected}, item.name


def test_threads_rung_is_skipped_where_torch_already_uses_the_physical_cores() -> None:
    config = resolve_config(RunOptions(device="cpu", model="tiny", threads=torch.get_num_threads()))
    threads = next(p for p in plan_ladder(config) if "threads" in p.name)
    assert threads.skipped and f"torch's default is already {torch.get_num_threads()} threads" in threads.skipped


def test_tf32_rung_is_skipped_on_a_cpu_with_the_reason() -> None:
    ladder = plan_ladder(baseline(resolve_config(RunOptions(device="cpu", model="tiny"))))
    tf32 = next(p for p in ladder if "TF32" in p.name)
    assert tf32.skipped and "NVIDIA tensor cores" in tf32.skipped


def test_ablate_cli_writes_every_rung(tmp_path: Path) -> None:
    args = ["ablate", "--device", "cpu", "--model", "tiny", "--seq", "8", "--steps", "1", "--warmup", "0", "--no-batch-search"]
    result = runner.invoke(app, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    runs = load_report(next(tmp_path.iterdir())).runs
    assert len(runs) == len(RUNGS) + 3
    statuses = {r.name: r.result.status for r in runs}
    assert statuses["+ TF32 matmuls"] == "skipped" and statuses[LARGEST_BATCH] == "skipped"
    # The rungs that may skip on a CPU, each only where its reason holds on this machine; every other rung must run.
    cpu, threads = torch.device("cpu"), resolve_config(RunOptions(device="cpu", model="tiny")).threads
    may_skip = {
        "+ TF32 matmuls": True,  # a mode of NVIDIA tensor cores: never on a CPU
        LARGEST_BATCH: True,  # --no-batch-search
        "+ tcmalloc": find_library("tcmalloc") is None,  # the library is not installed
        "+ physical-core threads": threads in (None, torch.get_num_threads()),  # torch already uses that many
        "+ fused AdamW": not supports_fused_adamw(cpu),  # a torch without the CPU kernel
        "+ bf16 autocast": not has_fast_bf16(cpu),  # no AVX512-BF16/AMX: autocast would only add casts
        "+ torch.compile": compile_problem(cpu) is not None,  # no Dynamo for this Python, or no C compiler
        **{rung.name: rung.name != FRONTIER[0].name for rung in FRONTIER},  # FP8 and the compile modes: GPU only
    }
    for r in runs:
        expected = "skipped" if may_skip.get(r.name, False) else "ok"
        assert r.result.status == expected, (r.name, r.result.status, r.result.error)
        assert expected == "ok" or r.result.error, r.name  # a skip says why
    assert runs[0].config.allocator == "system"  # measured in a worker started without the preload
    by_name = {r.name: r for r in runs}
    if find_library("tcmalloc"):  # the rung's worker really ran on it (read from its /proc/self/maps)
        assert by_name["+ tcmalloc"].config.allocator == "tcmalloc" and runs[-2].config.allocator == "tcmalloc"
    else:
        assert "apt-get install libtcmalloc-minimal4" in by_name["+ tcmalloc"].result.error
    assert "1.00x" in result.stdout  # the baseline against itself, in the speedup columns


def test_batch_search_respects_the_memory_limit() -> None:
    config = resolve_config(TINY)
    base = probe(config, 1, bound_gb=1e9).peak_gb  # the process itself: torch, model, one tiny batch
    limit = round(base + 0.12, 3)  # memory is reported to the MB: without rounding, 0.427 + 0.12 is 0.54699...
    found = auto_batch(config, memory_limit_gb=limit, headroom=0.0, max_batch=64)
    assert all((p.peak_gb <= limit) == p.fits for p in found.probes if p.ran)
    assert all(p.predicted_gb > limit for p in found.probes if not p.ran)
    assert found.largest >= 2
    missed = [p.micro_batch for p in found.probes if not p.fits]
    step = 8 if found.largest >= 16 else 1  # exact below 16, multiples of 8 above
    assert found.largest == 64 or min(b for b in missed if b > found.largest) - found.largest <= step
    best = found.runs[0]
    assert best.result.status == "ok" and best.config.micro_batch <= found.largest
    assert best.result.memory.host_peak_rss_gb <= limit


def test_memory_sizes() -> None:
    assert parse_size_gb("2GB") == 2 and parse_size_gb("512MB") == 0.512 and parse_size_gb("1GiB") == 2**30 / 1e9
    with pytest.raises(GptbenchError, match="expected a size"):
        parse_size_gb("lots")


def test_measured_peak_gives_percent_of_achievable(tmp_path: Path) -> None:
    m = measure_matmul(torch.device("cpu"), "fp32", (128, 128, 128), budget_s=0.05)
    assert m.tflops > 0 and m.repeats >= 3
    run = resolve_and_run()
    peak = MeasuredPeak(device="cpu", matmul=[m], best_tflops={"fp32": 2.0, "bf16": 4.0})
    attach_measured_peak(run, peak)
    precision_peak = 4.0 if run.config.dtype == "bf16" else 2.0
    assert run.result.mfu_measured == pytest.approx(run.result.achieved_tflops / precision_peak)
    report = new_report(torch.device("cpu"), "peak")
    report.peak = peak
    write_report(report, tmp_path)
    assert newest_peak_for(tmp_path, new_report(torch.device("cpu"))) == peak


def resolve_and_run():  # noqa: ANN201
    from gptbench.bench.runner import run_benchmark

    return run_benchmark(resolve_config(TINY))


def test_peak_cli_on_cpu(tmp_path: Path) -> None:
    result = runner.invoke(app, ["peak", "--device", "cpu", "--budget-s", "0.05", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    peak = load_report(next(tmp_path.iterdir())).peak
    assert peak is not None and peak.best_tflops["fp32"] > 0 and peak.bandwidth_gbs > 0
    assert {m.dtype for m in peak.matmul} >= {"fp32", "bf16"}


def test_a_series_reuses_a_run_measured_earlier(tmp_path: Path) -> None:
    """The suite hands the ladder runs it already measured (on a GPU the default run is the top rung)."""
    from gptbench.bench.runner import run_benchmark
    from gptbench.studies.series import SeriesItem

    config = resolve_config(TINY)
    earlier = run_benchmark(config)
    file = run_series([SeriesItem("again", config, measured=earlier)], new_report(torch.device("cpu")), str(tmp_path))
    (run,) = load_report(file.path).runs
    assert run.name == "again" and run.result.step_times_s == earlier.result.step_times_s
    assert earlier.name is None  # the earlier run itself is not renamed


def _json_and_files(result: Any, folder: Path) -> tuple[Any, dict[str, dict]]:
    """The command's stdout as JSON (it must be nothing else) and the reports it wrote, by label."""
    assert result.exit_code == 0, result.output
    on_disk = [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]
    return json.loads(result.stdout), {d["label"]: d for d in on_disk}


def test_peak_json_prints_the_report_as_written(tmp_path: Path) -> None:
    result = runner.invoke(app, ["peak", "--device", "cpu", "--budget-s", "0.02", "--json", "--out", str(tmp_path)])
    printed, files = _json_and_files(result, tmp_path)
    assert printed == files["peak"]
    assert printed["peak"]["device"] == "cpu" and printed["peak"]["best_tflops"]["fp32"] > 0 and printed["runs"] == []


def _fake_worker(config: Any, *limits: Any) -> Any:
    """A run as a worker would return it, without training: the ladder's compile rung alone takes minutes on a CPU.
    Faster with the micro-batch, and 0.1 GB of host memory per sample (what the batch search reads)."""
    from gptbench.bench.runner import planned_params, run_config
    from gptbench.reports.schema import Memory, Run, RunResult

    rate = 1000.0 * config.micro_batch
    memory = Memory(host_peak_rss_gb=0.1 * config.micro_batch)
    return Run(run_config(config, planned_params(config)), RunResult(tokens_per_sec=rate, step_time_s=1.0, memory=memory))


def test_sweep_json_prints_the_report_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The runs themselves are faked (real sweeps are measured above): this is about what goes where."""
    monkeypatch.setattr("gptbench.studies.series.run_in_subprocess", _fake_worker)
    args = ["sweep", "--device", "cpu", "--model", "tiny", "--seq", "8", "--batch", "1,2", "--steps", "2", "--warmup", "1"]
    result = runner.invoke(app, [*args, "--json", "--out", str(tmp_path)])
    printed, files = _json_and_files(result, tmp_path)
    assert printed == files["sweep"]  # the same JSON as the file, and no table on stdout
    assert [r["config"]["micro_batch"] for r in printed["runs"]] == [1, 2]
    assert [r["result"]["tokens_per_sec"] for r in printed["runs"]] == [1000.0, 2000.0]
    assert "report: " in result.stderr and "batch=1" in result.stderr  # progress and the path stay on stderr


def test_ablate_json_prints_the_ladder_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("gptbench.studies.series.run_in_subprocess", _fake_worker)
    args = ["ablate", "--device", "cpu", "--model", "tiny", "--seq", "8", "--steps", "2", "--warmup", "1", "--no-batch-search"]
    result = runner.invoke(app, [*args, "--json", "--out", str(tmp_path)])
    printed, files = _json_and_files(result, tmp_path)
    assert printed == files["ablate"]
    statuses = {r["name"]: r["result"]["status"] for r in printed["runs"]}
    assert len(statuses) == len(RUNGS) + 3 and statuses["+ TF32 matmuls"] == "skipped"
    assert statuses[LARGEST_BATCH] == "skipped" and "1.00x" not in result.stdout  # the ladder table is left out


def test_suite_json_prints_its_four_reports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gptbench.cli import peak as peak_cli

    shown = []

    def fake_peak_child(device: str, budget_s: float, out_dir: Path, show: bool = True) -> Path:
        shown.append(show)
        report = new_report(torch.device("cpu"), "suite-peak")
        report.peak = MeasuredPeak(device="cpu", best_tflops={"fp32": 1.0})
        return write_report(report, out_dir)

    for where in ("gptbench.bench.worker", "gptbench.studies.series", "gptbench.studies.autobatch"):
        monkeypatch.setattr(f"{where}.run_in_subprocess", _fake_worker)
    monkeypatch.setattr(peak_cli, "peak_in_child", fake_peak_child)
    args = ["suite", "--device", "cpu", "--model", "tiny", "--seq", "8", "--steps", "2", "--warmup", "1", "--max-batch", "4"]
    result = runner.invoke(app, [*args, "--json", "--out", str(tmp_path)])
    printed, files = _json_and_files(result, tmp_path)
    assert [r["label"] for r in printed] == ["suite-peak", "suite-default", "suite-auto-batch", "suite-ablate"]
    assert printed == [files[r["label"]] for r in printed] and shown == [False]  # the peak's table not on stdout
    assert printed[2]["runs"][0]["config"]["micro_batch"] == 4  # the fake is fastest at the largest batch
    assert len(printed[3]["runs"]) == len(RUNGS) + 3 and "suite finished" in result.stderr
