"""`gptbench estimate`: known answers for time and money, token parsing, reports as sources, the catalog, bad input."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from gptbench.cli import app
from gptbench.cloud.estimate import RunPlan, Throughput, estimate, hours_for
from gptbench.cloud.prices import PRICES_FILE, all_offers, current_offers
from gptbench.cloud.throughput import workload_for
from gptbench.cloud.tokens import parse_tokens
from gptbench.errors import GptbenchError
from gptbench.hardware.specs import find_gpu
from gptbench.predict.scaling import DDP_FACTOR, modelled_efficiency, phases_for
from gptbench.reports.schema import Accelerator, Machine, ModelShape, Report, Run, RunConfig, RunResult
from gptbench.reports.store import find_reports

runner = CliRunner()
GIVEN = Throughput(142_000, "given", "--tokens-per-sec")


def test_known_answer_hours_and_dollars() -> None:
    """The issue's example: 10e9 tokens at 142,000 tok/s is 19.56 h, and at $1.29/h that is $25.23."""
    assert hours_for(10e9, 142_000) == pytest.approx(19.5618, abs=1e-4)
    e = estimate(RunPlan(10e9, price_usd=1.29), GIVEN)
    assert round(e.hours, 2) == 19.56 and round(e.cost_usd or 0, 2) == 25.23
    result = runner.invoke(app, ["estimate", "--tokens", "10e9", "--tokens-per-sec", "142000", "--price", "1.29"])
    assert result.exit_code == 0, result.output
    assert "19.56 h" in result.output and "$25.23" in result.output and "given" in result.output


def test_eight_gpus_at_090_divide_the_time_by_72() -> None:
    one = estimate(RunPlan(10e9), GIVEN)
    eight = estimate(RunPlan(10e9, gpus=8, scaling_efficiency=0.9), GIVEN)
    assert one.hours / eight.hours == pytest.approx(7.2)
    assert eight.scaling_basis == "given"


def test_more_gpus_without_a_measurement_use_the_scaling_model_and_its_band() -> None:
    """No fixed 0.9: the efficiency is the scaling model's, labelled not validated, and the time range carries its band."""
    e = estimate(RunPlan(10e9, gpus=4, price_usd=2.0), GIVEN)
    assert e.scaling_efficiency == DDP_FACTOR and e.scaling_basis == "modelled"  # no GPU named: no link to model
    assert any(line.startswith("scaling: not validated") for line in e.assumptions)
    assert e.hours_range is not None and e.hours_range[0] < e.hours < e.hours_range[1]
    assert e.hours_range[0] >= hours_for(10e9, 4 * 142_000) - 1e-9  # the fast end never beats linear scaling
    assert e.price_per_hour_usd == 8.0  # --price is per GPU by default


def test_estimate_and_plan_share_one_scaling_model() -> None:
    """For a named GPU, estimate's efficiency is the link model x DDP_FACTOR that plan's configurations use."""
    spec, w = find_gpu("a100-sxm4-80gb"), workload_for("124m", None, 16, "bf16", True, "sdpa")
    one = Throughput(200_000, "projected", "test", gpu=spec.name)
    e = estimate(RunPlan(10e9, gpus=8), one, workload=w)
    assert e.scaling_efficiency == pytest.approx(modelled_efficiency(w, spec, 8, phases_for(w, spec, 200_000)))
    assert e.scaling_efficiency <= DDP_FACTOR and e.scaling_basis == "modelled"


def test_price_per_instance_and_overhead() -> None:
    e = estimate(RunPlan(10e9, gpus=8, scaling_efficiency=1.0, price_usd=14.32, price_per="instance", overhead=0.1), GIVEN)
    assert e.price_per_hour_usd == 14.32
    assert e.hours == pytest.approx(hours_for(10e9, 8 * 142_000) * 1.1)
    assert e.cost_usd == pytest.approx(e.hours * 14.32)


@pytest.mark.parametrize(
    ("text", "tokens"),
    [("10e9", 10e9), ("2.5B", 2.5e9), ("300M", 300e6), ("1_000_000", 1e6), ("1.5t", 1.5e12), ("fineweb-10b", 10e9)],
)
def test_token_counts_as_people_write_them(text: str, tokens: float) -> None:
    assert parse_tokens(text)[0] == pytest.approx(tokens)


def test_chinchilla_is_twenty_tokens_per_parameter_times_epochs() -> None:
    tokens, how = parse_tokens("chinchilla", n_params=124_439_808, epochs=2)
    assert tokens == 2 * 20 * 124_439_808 and "chinchilla" in how and "2 epochs" in how
    with pytest.raises(GptbenchError, match="needs a model"):
        parse_tokens("chinchilla")


def _report(gpu_name: str = "NVIDIA A100-SXM4-40GB", rates: tuple[float, ...] = (100_000.0,), world_size: int = 1) -> Report:
    """A report shaped like `gptbench run` writes on CUDA; its numbers are made up for the tests."""
    shape = ModelShape("124m", 12, 12, 768, 50304, 1024, 124_475_904)
    runs = []
    for rate in rates:
        config = RunConfig(shape, 1024, 16, 1, world_size, 16384 * world_size, "bf16", True, "sdpa", True, True, "synthetic")
        result = RunResult("ok", tokens_per_sec=rate, tokens_per_sec_p10=rate * 0.9, tokens_per_sec_p90=rate * 1.05)
        runs.append(Run(config, result))
    return Report(Machine(accelerator=Accelerator("cuda", gpu_name, world_size)), runs, created="2026-11-01T00:00:00+00:00")


def _write(path: Path, report: Report, **extra_result: Any) -> Path:
    data = report.to_dict()
    for run in data["runs"]:
        run["result"].update(extra_result)  # fields a later schema revision adds (telemetry, scaling_efficiency)
    path.write_text(json.dumps(data))
    return path


def test_report_best_run_range_and_measured_power(tmp_path: Path) -> None:
    path = _write(tmp_path / "a100.json", _report(rates=(80_000.0, 100_000.0)), telemetry={"power_avg_w": 250.0})
    args = ["estimate", "--report", str(path), "--tokens", "fineweb-10b", "--price", "1.29", "--kwh-price", "0.3", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["basis"] == "measured" and data["tokens_per_sec"] == 100_000.0 and "run 1" in data["throughput"]["source"]
    assert data["hours"] == pytest.approx(hours_for(10e9, 100_000))
    fast, slow = data["hours_range"]
    assert fast == pytest.approx(hours_for(10e9, 105_000)) and slow == pytest.approx(hours_for(10e9, 90_000))
    assert data["electricity"]["power_basis"] == "measured" and data["electricity"]["power_w"] == 250.0
    assert data["electricity"]["kwh"] == pytest.approx(0.25 * data["hours"])
    chosen = runner.invoke(app, ["estimate", "--report", str(path), "--run", "0", "--json"])
    assert json.loads(chosen.stdout)["tokens_per_sec"] == 80_000.0


def test_report_on_eight_gpus_at_instance_price_uses_measured_scaling(tmp_path: Path) -> None:
    path = _write(tmp_path / "a100x8.json", _report(rates=(720_000.0,), world_size=8), scaling_efficiency=0.8)
    same = runner.invoke(
        app, ["estimate", "--report", str(path), "--gpus", "8", "--price", "14.32", "--price-per", "instance", "--json"]
    )
    data = json.loads(same.stdout)
    assert data["tokens_per_sec"] == 720_000.0 and data["price_per_hour_usd"] == 14.32
    double = json.loads(runner.invoke(app, ["estimate", "--report", str(path), "--gpus", "16", "--json"]).stdout)
    assert double["scaling_basis"] == "measured" and double["tokens_per_sec"] == pytest.approx(720_000 / 8 / 0.8 * 16 * 0.8)


def test_board_power_is_the_stated_fallback(tmp_path: Path) -> None:
    path = _write(tmp_path / "a100.json", _report())
    data = json.loads(runner.invoke(app, ["estimate", "--report", str(path), "--kwh-price", "0.3", "--json"]).stdout)
    assert data["electricity"]["power_basis"] == "assumed" and data["electricity"]["power_w"] == find_gpu("a100").board_power_w
    assert any("board power" in line for line in data["assumptions"])


def test_newest_report_in_the_folder_is_used(tmp_path: Path) -> None:
    old = _write(tmp_path / "old.json", _report(rates=(1_000.0,)))
    new = _write(tmp_path / "new.json", _report(rates=(2_000.0,)))
    os.utime(old, (1_000_000, 1_000_000))
    assert find_reports(tmp_path) == [old, new]
    data = json.loads(runner.invoke(app, ["estimate", "--reports-dir", str(tmp_path), "--json"]).stdout)
    assert data["tokens_per_sec"] == 2_000.0 and str(new) in data["throughput"]["source"]


def test_a_gpu_measured_elsewhere_is_carried_and_one_nobody_measured_is_projected(tmp_path: Path) -> None:
    """No report of yours: the reference set's H100 SXM point is carried to the asked batch; nothing on an RTX 4080."""
    result = runner.invoke(app, ["estimate", "--gpu", "h100-sxm", "--reports-dir", str(tmp_path), "--price", "2.69"])
    assert result.exit_code == 0, result.output
    assert "carried" in result.output and "time (carried)" in result.output and "Any-Winter-4079" in result.output
    args = ["estimate", "--gpu", "rtx4080", "--batch", "32", "--reports-dir", str(tmp_path), "--json"]
    data = json.loads(runner.invoke(app, args).stdout)
    assert data["basis"] == "projected" and data["throughput"]["fits"] is False  # 16 GB at micro-batch 32


def test_catalog_is_ranked_by_cost_and_a_measurement_wins(tmp_path: Path) -> None:
    _write(tmp_path / "h100.json", _report("NVIDIA H100 80GB HBM3", rates=(1.0e6,)))
    result = runner.invoke(app, ["estimate", "--tokens", "10e9", "--catalog", "--reports-dir", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    offers = json.loads(result.stdout)["offers"]
    costs = [o["cost_usd"] for o in offers if o["cost_usd"] is not None]
    assert costs == sorted(costs) and len(offers) >= 30
    assert {o["basis"] for o in offers if o["gpu"] == "h100-sxm"} == {"measured"}
    assert {o["basis"] for o in offers if o["gpu"] == "l4"} == {"carried"}  # the reference set's L4 at batch 16 x 32
    assert {o["basis"] for o in offers if o["gpu"] == "a10"} == {"projected"}  # nothing measured on an A10
    one_gpu_h100 = next(o for o in offers if o["gpu"] == "h100-sxm" and o["gpus"] == 1)
    assert one_gpu_h100["hours"] == pytest.approx(hours_for(10e9, 1.0e6))
    eight = runner.invoke(app, ["estimate", "--catalog", "--reports-dir", str(tmp_path), "--gpus", "8", "--json"])
    assert {o["gpus"] for o in json.loads(eight.stdout)["offers"]} == {8}
    table = runner.invoke(app, ["estimate", "--catalog", "--reports-dir", str(tmp_path)])
    assert table.exit_code == 0 and "assumptions" in table.output and "projected" in table.output


def test_price_catalog_rows_are_sourced_dated_and_name_known_gpus() -> None:
    with open(PRICES_FILE, newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(all_offers())
    for offer in all_offers():
        assert offer.source.startswith("http") or "http" in offer.source, offer
        assert len(offer.observed) == 10 and offer.observed[4] == "-"
        find_gpu(offer.gpu)  # raises for a GPU the spec table does not know
    assert {"lambda", "runpod", "aws", "gcp", "azure", "vast"} <= {o.provider for o in all_offers()}
    wanted = {"a100-sxm4-40gb", "a100-sxm4-80gb", "h100-sxm", "h100-pcie", "h200", "b200", "l4", "l40s", "a10", "a10g"}
    assert wanted | {"rtx3090", "rtx4090", "rtx5090"} <= {o.gpu for o in all_offers()}


def test_the_newest_observation_of_an_offer_supersedes_older_ones() -> None:
    current, superseded = current_offers()
    lambda_a100 = [o for o in current if o.provider == "lambda" and o.gpu == "a100-sxm4-40gb" and o.gpus == 1]
    assert [o.price_per_hour_usd for o in lambda_a100] == [1.99]
    assert any(o.price_per_hour_usd == 1.29 and o.observed.startswith("2024-11") for o in superseded)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tokens", "0"], "--tokens must be positive"),
        (["--tokens", "-5"], "--tokens must be positive"),
        (["--tokens", "lots"], "not a token count"),
        (["--tokens-per-sec", "0"], "--tokens-per-sec 0: give a number above 0"),
        (["--price", "-1"], "--price -1: give a number above 0"),
        (["--gpus", "0"], "--gpus 0: give a whole number from 1 to 100,000"),
        (["--scaling-efficiency", "1.5"], "--scaling-efficiency 1.5: give a number above 0, up to 1"),
        (["--scaling-efficiency", "0"], "--scaling-efficiency 0: give a number above 0, up to 1"),
        (["--gpu", "x1"], "unknown GPU 'x1'"),
        (["--model", "huge"], "unknown model preset 'huge'"),
        (["--tokens", "fineweb-11b"], "not a token count"),
        (["--report", "/nonexistent/report.json"], "no such report file"),
        (["--price-per", "hour"], "--price-per hour: choose one of gpu, instance"),
        (["--dtype", "fp8"], "--dtype fp8"),
        (["--overhead", "-0.1"], "--overhead -0.1: give a number from 0 up to (not including) 10"),
        (["--tokens-per-sec", "10", "--report", "x.json"], "not both"),
        ([], "no report in"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    needs_speed = not any(a in args for a in ("--tokens-per-sec", "--report", "--gpu")) and args != []
    base = ["--tokens-per-sec", "1000"] if needs_speed else []
    result = runner.invoke(app, ["estimate", "--reports-dir", str(tmp_path), *base, *args])
    assert result.exit_code == 2, result.output
    assert message in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.output


def test_a_file_that_is_not_a_report_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "notes.json"
    bogus.write_text('{"hello": 1}')
    result = runner.invoke(app, ["estimate", "--report", str(bogus)])
    assert result.exit_code == 2 and "not a gptbench report" in result.stderr


def test_kwh_price_without_any_power_figure_says_how_to_fix() -> None:
    result = runner.invoke(app, ["estimate", "--tokens-per-sec", "1000", "--kwh-price", "0.3"])
    assert result.exit_code == 2 and "--power-w" in result.stderr
    ok = runner.invoke(app, ["estimate", "--tokens-per-sec", "1000", "--kwh-price", "0.3", "--power-w", "500", "--json"])
    assert json.loads(ok.stdout)["electricity"]["power_basis"] == "given"


def test_estimate_never_imports_torch(tmp_path: Path) -> None:
    args = ["-X", "importtime", "-m", "gptbench", "estimate", "--catalog", "--reports-dir", str(tmp_path)]
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert "gptbench.predict.projection" in imported
    assert not [m for m in imported if m.split(".")[0] in ("torch", "pandas", "numpy")]


def test_a_users_own_catalog_replaces_the_packaged_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    mine = tmp_path / "prices.csv"
    header = "provider,instance,gpu,gpus,price_per_hour_usd,price_basis,observed,source\n"
    mine.write_text(header + "uni,cluster node,a100-sxm4-80gb,4,2.00,reserved,2026-11-01,https://example.edu/rates\n")
    args = ["estimate", "--catalog", "--reports-dir", str(tmp_path), "--json"]
    offers = json.loads(runner.invoke(app, [*args, "--catalog-file", str(mine)]).stdout)["offers"]
    assert [(o["provider"], o["gpus"], o["price_per_hour_usd"]) for o in offers] == [("uni", 4, 2.0)]
    monkeypatch.setenv("GPTBENCH_PRICES_FILE", str(mine))
    assert len(json.loads(runner.invoke(app, args).stdout)["offers"]) == 1
    mine.write_text(header + "uni,cluster node,a100-sxm4-80gb,four,2.00,reserved,2026-11-01,https://example.edu/rates\n")
    bad = runner.invoke(app, [*args, "--catalog-file", str(mine)])
    assert bad.exit_code == 2 and "gpus must be a whole number" in bad.stderr


def test_projection_carries_its_evidence_and_a_band(tmp_path: Path) -> None:
    data = json.loads(runner.invoke(app, ["estimate", "--gpu", "mi300x", "--reports-dir", str(tmp_path), "--json"]).stdout)
    t = data["throughput"]
    assert t["evidence"] == "projected: no GPU of mi300x's architecture (cdna3) was measured"
    assert t["range_basis"] == "held-out band"
    assert t["tokens_per_sec_p10"] < t["tokens_per_sec"] < t["tokens_per_sec_p90"]
    fast, slow = data["hours_range"]
    assert fast < data["hours"] < slow
    h100 = json.loads(runner.invoke(app, ["estimate", "--gpu", "h100-sxm", "--reports-dir", str(tmp_path), "--json"]).stdout)
    assert h100["throughput"]["evidence"].startswith("carried from a measurement on an H100-SXM by Any-Winter-4079")
    catalog = json.loads(runner.invoke(app, ["estimate", "--catalog", "--reports-dir", str(tmp_path), "--json"]).stdout)
    assert all(o["evidence"] and o["hours_range"] for o in catalog["offers"] if o["basis"] in ("carried", "projected"))


def test_a_measurement_of_another_configuration_is_not_called_measured(tmp_path: Path) -> None:
    """The report ran batch 16, compiled: asking for batch 32 or eager carries a measurement across, naming it and
    what differs."""
    _write(tmp_path / "h100.json", _report("NVIDIA H100 80GB HBM3", rates=(1.0e6,)))
    args = ["estimate", "--gpu", "h100-sxm", "--reports-dir", str(tmp_path), "--json"]
    same = json.loads(runner.invoke(app, args).stdout)
    assert same["basis"] == "measured"
    other = json.loads(runner.invoke(app, [*args, "--batch", "32", "--no-compile"]).stdout)
    assert other["basis"] == "carried"
    assert "(asked 32)" in other["throughput"]["evidence"] and "compile True (asked False)" in other["throughput"]["evidence"]
    recomputed = json.loads(runner.invoke(app, [*args, "--activation-checkpointing"]).stdout)
    assert recomputed["basis"] == "carried"  # a run without recomputation is not this one's measurement
    assert "activation_checkpointing False (asked True)" in recomputed["throughput"]["evidence"]


def test_explain_breaks_the_step_into_groups_with_switches(tmp_path: Path) -> None:
    args = ["estimate", "--gpu", "a100", "--reports-dir", str(tmp_path), "--json", "--explain"]
    fast = json.loads(runner.invoke(app, args).stdout)["breakdown"]
    groups = {g["group"]: g for g in fast["groups"]}
    assert list(groups) == ["matmuls", "attention", "LM head + cross-entropy", "elementwise", "optimizer"]
    assert sum(g["share"] for g in groups.values()) == pytest.approx(1.0)
    assert sum(g["time_s"] for g in groups.values()) == pytest.approx(fast["step_time_s"])
    assert groups["matmuls"]["bound"] == "compute" and max(groups.values(), key=lambda g: g["share"])["group"] == "matmuls"
    assert fast["measured_basis"] == "carried"  # nothing of yours: the reference set's A100 run, carried to this step
    naive = json.loads(runner.invoke(app, [*args, "--attention", "naive", "--no-compile"]).stdout)["breakdown"]
    attention = next(g for g in naive["groups"] if g["group"] == "attention")
    assert attention["bound"] == "memory" and "--attention sdpa" in attention["switch"]
    assert max(naive["groups"], key=lambda g: g["share"])["group"] == "attention"  # flash off: attention dominates
    table = runner.invoke(app, ["estimate", "--gpu", "a100", "--reports-dir", str(tmp_path), "--explain"])
    assert table.exit_code == 0 and "what would change it" in table.output and "modelled step" in table.output


def test_explain_puts_the_measured_step_beside_the_modelled_one(tmp_path: Path) -> None:
    path = _write(tmp_path / "a100.json", _report(rates=(100_000.0,)))
    data = json.loads(runner.invoke(app, ["estimate", "--report", str(path), "--explain", "--json"]).stdout)["breakdown"]
    assert data["measured_step_time_s"] == pytest.approx(16 * 1024 / 100_000) and str(path) in data["measured_source"]
    by_gpu = runner.invoke(app, ["estimate", "--gpu", "a100", "--reports-dir", str(tmp_path), "--explain", "--json"])
    assert json.loads(by_gpu.stdout)["breakdown"]["measured_step_time_s"] == pytest.approx(16 * 1024 / 100_000)
    bad = runner.invoke(app, ["estimate", "--tokens-per-sec", "1000", "--explain"])
    assert bad.exit_code == 2 and "--explain" in bad.stderr


def test_prices_that_are_not_an_observed_listing_say_so() -> None:
    """A 'typical' figure, a median mixing 40 and 80 GB cards, or a quote that names no A100 variant carries a note."""
    flagged = {(o.provider, o.price_per_hour_usd): o.notes for o in all_offers() if o.notes}
    assert "typical" in flagged[("vast", 0.50)]
    assert "40 GB and 80 GB" in flagged[("vast", 0.835)]
    assert "does not say which A100" in flagged[("lambda", 1.29)]
    for offer in all_offers():
        if "typical" in offer.instance or "not distinguished" in offer.instance or "as quoted" in offer.source:
            assert offer.notes, offer


def test_a_gpu_without_bf16_matches_its_fp16_measurement(tmp_path: Path) -> None:
    """On a V100 `run` picks fp16, so an fp16 run answers a default (bf16) request for that GPU."""
    report = _report("Tesla V100-SXM2-16GB", rates=(40_000.0,))
    data = report.to_dict()
    data["runs"][0]["config"]["dtype"] = "fp16"
    (tmp_path / "v100.json").write_text(json.dumps(data))
    out = json.loads(runner.invoke(app, ["estimate", "--gpu", "v100", "--reports-dir", str(tmp_path), "--json"]).stdout)
    assert out["basis"] == "measured" and out["tokens_per_sec"] == 40_000.0


def test_estimate_json_is_the_estimates_own_data() -> None:
    """`estimate --json` prints Estimate.to_dict(): the command adds nothing of its own to the shape."""
    args = "estimate --tokens-per-sec 142000 --tokens 10e9 --price 1.29 --kwh-price 0.3 --power-w 500 --json".split()
    printed = json.loads(runner.invoke(app, args).stdout)
    plan = RunPlan(10e9, "10e9", price_usd=1.29, kwh_price_usd=0.3, power_w=500.0)
    made = estimate(plan, Throughput(142_000, "given", "--tokens-per-sec")).to_dict()
    assert printed == made
    assert printed["electricity"] == {"power_w": 500.0, "power_basis": "given", "kwh": made["electricity"]["kwh"],
                                      "kwh_price_usd": 0.3, "cost_usd": made["electricity"]["cost_usd"]}  # fmt: skip
    assert printed["cost_usd"] == pytest.approx(25.23, abs=0.01)
