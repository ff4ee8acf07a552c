"""The prediction ledger: a measurement is judged against the prediction registered before it, and the file's
history shows that no registered prediction was edited afterwards."""

from __future__ import annotations

import copy
import math
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from gptbench.errors import GptbenchError
from gptbench.predict.ledger import (
    COLUMNS,
    Entry,
    check,
    describe_run,
    format_ledger,
    history_problems,
    parse_ledger,
    read_ledger,
    record,
)
from gptbench.reports.schema import Report
from gptbench.reports.store import load_report

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "reports" / "reference"
H200_DEFAULT = REFERENCE / "20261204-175913_vm_nvidia-h200_acceptance-default.json"  # 477,672 tok/s, 9.88 GB reserved
H200_BATCH = REFERENCE / "20261204-180045_vm_nvidia-h200_acceptance-batch.json"  # micro-batch 64: 535,940 tok/s
CONFIG = (
    "model=124m seq_len=1024 micro_batch=16 grad_accum=1 world_size=1 dtype=bf16 compile=true attention=sdpa fused_adamw=true"
)
BEFORE = "2026-12-01T12:00:00+00:00"  # registered before the H200 runs of 2026-12-04


def entry(id: str = "h200-b16-tok", metric: str = "tokens_per_sec", predicted: float = 498_532, **kw: object) -> Entry:
    fields = dict(registered_utc=BEFORE, commit="2c7fa9a", gpu="h200", configuration=CONFIG, metric=metric,
                  predicted=predicted, band_low=predicted / 1.5, band_high=predicted * 1.5, basis="test")  # fmt: skip
    return Entry(id, **{**fields, **kw})  # type: ignore[arg-type]


def test_a_measurement_is_judged_against_the_registered_prediction() -> None:
    report = load_report(H200_DEFAULT)
    rows = [
        entry(),
        entry("h200-b16-mem", "peak_reserved_gb", 17.3),
        entry("h200-b64-tok", configuration=CONFIG.replace("=16", "=64")),
    ]
    updated, filled = record(rows, report, H200_DEFAULT.name)
    assert [e.id for e in filled] == ["h200-b16-tok", "h200-b16-mem"]  # the batch-64 row waits for its own run
    tok, mem, b64 = updated
    assert tok.measured == pytest.approx(477_672.16, abs=0.01) and tok.ln_error == round(math.log(498_532 / tok.measured), 4)
    assert tok.in_band and tok.note == "within band" and tok.measured_utc == "2026-12-04T17:59:13+00:00"
    assert mem.measured == 9.88 and mem.in_band is False and mem.note == "MISS: outside the registered band"
    assert b64.measured is None and b64 == rows[2]
    again, refilled = record(updated, load_report(H200_BATCH), H200_BATCH.name)  # the batch-64 run fills only its row
    assert [e.id for e in refilled] == ["h200-b64-tok"] and again[:2] == updated[:2]


def test_a_run_with_a_switch_the_row_leaves_out_measures_nothing() -> None:
    report = load_report(H200_DEFAULT)
    checkpointed = copy.deepcopy(report)
    checkpointed.runs[0].config.activation_checkpointing = True
    assert record([entry()], checkpointed, "x.json")[1] == []
    assert "activation_checkpointing=true" in describe_run(checkpointed.runs[0].config)
    assert record([entry(configuration=CONFIG + " activation_checkpointing=true")], checkpointed, "x.json")[1]
    sized = copy.deepcopy(report)  # why the batch was chosen is not what ran: a batch sized by memory still matches
    sized.runs[0].config.micro_batch_basis = "micro-batch 16 (the default here …)"
    assert record([entry()], sized, "x.json")[1]


def test_a_prediction_registered_after_its_measurement_is_refused() -> None:
    with pytest.raises(GptbenchError, match="before h200-b16-tok was registered"):
        record([entry(registered_utc="2026-12-05T00:00:00+00:00")], load_report(H200_DEFAULT), "x.json")


def test_a_report_from_an_unknown_gpu_records_nothing_and_says_why() -> None:
    report: Report = load_report(REFERENCE / "20261128-232816_vm_amd-epyc.json")
    with pytest.raises(GptbenchError, match="not in the GPU spec table"):
        record([entry()], report, "cpu.json")


def test_check_names_each_broken_row() -> None:
    measured = record([entry()], load_report(H200_DEFAULT), "x.json")[0][0]
    rows = [
        measured,
        entry("outside", band_low=500_000),
        replace(measured, id="edited-error", ln_error=0.5),
        replace(measured, id="measured-first", measured_utc="2026-11-30T00:00:00+00:00"),
        entry("half", measured=1.0),
        entry("no-shape", configuration="model=124m"),
        entry("outside"),
    ]
    problems = check(rows)
    assert not [p for p in problems if p.startswith(f"{measured.id}:")]
    for needle in ("outside: the band", "edited-error: ln_error", "measured-first: measured at", "half: measured,",
                   "no-shape: the configuration lacks", "outside: the id is used twice"):  # fmt: skip
        assert any(p.startswith(needle) for p in problems), (needle, problems)


def test_the_file_round_trips_and_a_wrong_header_is_an_error(tmp_path: Path) -> None:
    rows = [entry(), record([entry("m")], load_report(H200_DEFAULT), "x.json")[0][0]]
    assert parse_ledger(format_ledger(rows)) == rows
    bad = tmp_path / "p.csv"
    bad.write_text("id,predicted\n", encoding="utf-8")
    with pytest.raises(GptbenchError, match="header must be exactly id,registered_utc"):
        read_ledger(bad)


def _git(repo: Path, *args: str) -> str:
    env = ["-c", "user.name=t", "-c", "user.email=t@t"]
    return subprocess.run(["git", "-C", str(repo), *env, *args], capture_output=True, text=True, check=True).stdout.strip()


def test_history_catches_an_edited_prediction(tmp_path: Path) -> None:
    """A prediction changed after the commit that registered it is a problem; a measurement filled in later is not."""
    _git(tmp_path, "init", "-q")
    ledger = tmp_path / "predictions.csv"
    ledger.write_text(",".join(COLUMNS) + "\n", encoding="utf-8")
    _git(tmp_path, "add", ".")
    _git(tmp_path, "commit", "-qm", "model")
    model = _git(tmp_path, "rev-parse", "HEAD")
    row = entry(commit=model)
    ledger.write_text(format_ledger([row]), encoding="utf-8")
    _git(tmp_path, "commit", "-qam", "register")
    measured = replace(row, measured=1.0, measured_utc="2099-01-01T00:00:00+00:00", measured_report="r", ln_error=1.0)

    def versions() -> list[tuple[str, str, str]]:
        log = _git(tmp_path, "log", "--reverse", "--format=%H %cI").split()
        return [(c, t, _git(tmp_path, "show", f"{c}:predictions.csv") + "\n") for c, t in zip(log[::2], log[1::2], strict=True)]

    def is_ancestor(a: str, b: str) -> bool:
        return subprocess.run(["git", "-C", str(tmp_path), "merge-base", "--is-ancestor", a, b], check=False).returncode == 0

    assert history_problems([measured], versions(), is_ancestor) == ([], [])
    edited = replace(measured, predicted=477_000.0)
    problems, _ = history_problems([edited], versions(), is_ancestor)
    assert problems == [
        f"{row.id}: predicted changed since its registration in {versions()[1][0][:12]}; register a new row instead"
    ]
    early = replace(measured, measured_utc="2000-01-01T00:00:00+00:00")
    assert "before its registration was committed" in history_problems([early], versions(), is_ancestor)[0][0]
    stranger = replace(row, commit="0" * 40)
    assert history_problems([stranger], versions(), is_ancestor)[1] == [
        f"{row.id}: model commit {'0' * 40} is not in this clone's history"
    ]


def test_the_projects_ledger_passes_its_checks() -> None:
    """benchmarks/predictions.csv as committed: every row's checks and its git history (rows this clone cannot place
    are skipped, as a shallow clone would)."""
    done = subprocess.run([sys.executable, "scripts/ledger.py", "check"], cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "problem:" not in done.stdout


def test_record_on_a_cpu_report_is_one_line_and_exit_2(tmp_path: Path) -> None:
    ledger = tmp_path / "p.csv"
    ledger.write_text(format_ledger([entry()]), encoding="utf-8")
    before = ledger.read_text(encoding="utf-8")
    cpu = REFERENCE / "20261128-232816_vm_amd-epyc.json"
    done = subprocess.run([sys.executable, "scripts/ledger.py", "--ledger", str(ledger), "record", str(cpu)], cwd=ROOT,
                          capture_output=True, text=True, check=False)  # fmt: skip
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert ledger.read_text(encoding="utf-8") == before
