"""`gptbench plan`: known answers, the configuration search, the scaling model's leave-one-out, Pareto, JSON, HTML."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
from test_html_chart import screenshot
from typer.testing import CliRunner

from gptbench.cli import app
from gptbench.cloud.answers import pareto
from gptbench.cloud.plan import Option, PlanRequest, make_plan
from gptbench.cloud.setup import COMPILE_FIRST_STEP_S
from gptbench.cloud.throughput import workload_for
from gptbench.hardware.specs import find_gpu
from gptbench.predict.projection import project
from gptbench.predict.scaling import (
    DDP_FACTOR,
    SCALING_BOUND,
    SCALING_LEAVE_ONE_OUT,
    SCALING_POINTS,
    ScalingPoint,
    fit_factor,
    leave_one_out_errors,
    point_ratios,
    scaling_band,
    scaling_evidence,
)
from gptbench.predict.workload import Workload

runner = CliRunner()
REFERENCE = Path(__file__).resolve().parent.parent / "reports" / "reference"


def test_one_h100_known_answer(tmp_path: Path) -> None:
    """10e9 tokens on one H100: micro-batch 128 x 4 (the memory model, held to the H200 runs' reserved memory, puts it
    at 72 GB of 80), at the reference set's H100 SXM measurement (micro-batch 64 x 8) carried there by the model's ratio."""
    req = PlanRequest(10e9, gpu="h100-sxm", gpus=1, checkpoint_every=None, data="shards")
    option = next(o for o in make_plan(req, tmp_path).options if o.where.startswith("lambda gpu_1x_h100"))
    assert (option.micro_batch, option.grad_accum, option.sharding) == (128, 4, "none")
    w = workload_for("124m", None, 128, "bf16", True, "sdpa", grad_accum=4)
    assert option.basis == "carried" and "Any-Winter-4079" in option.evidence
    h100 = find_gpu("h100-sxm")
    rate = 466440 * project(w, h100).tokens_per_sec / project(replace(w, micro_batch=64, grad_accum=8), h100).tokens_per_sec
    assert option.tokens_per_sec == pytest.approx(rate)
    assert option.hours == pytest.approx(10e9 / rate / 3600 + COMPILE_FIRST_STEP_S / 3600)
    assert option.cost_usd == pytest.approx(option.hours * 4.29)  # lambda's 1x H100 SXM at $4.29/h in prices.csv


def test_gpt2_xl_fits_on_eight_h100s(tmp_path: Path) -> None:
    """llm.c's GPT-2 1558M run: at micro-batch 16 it needs ~85 GB, so the search steps down to one that fits."""
    plan = make_plan(PlanRequest(33.5e9, model="1558m", gpu="h100-sxm", gpus=8), tmp_path)
    assert plan.options and all(o.fits and o.memory_gb and o.memory_gb <= 80 for o in plan.options)
    assert {(o.micro_batch, o.grad_accum, o.sharding) for o in plan.options} == {(8, 8, "none")}


def test_a_model_too_big_is_sharded_and_labelled_or_says_what_would_fit(tmp_path: Path) -> None:
    eight = make_plan(PlanRequest(1e9, model="1558m", gpu="rtx4090", gpus=8, price_usd=0.5), tmp_path).options
    assert len(eight) == 1 and eight[0].sharding == "full" and eight[0].fits  # ZeRO-1 leaves 3 GB of weight copies
    assert "measure it with run --nproc N --shard" in eight[0].note
    one = make_plan(PlanRequest(1e9, model="1558m", gpu="rtx4090", gpus=1), tmp_path).options
    assert one and all(o.fits is False and "would fit on" in o.problem and o.hours is None for o in one)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tokens-per-step", "1000"], "not a whole number of 1024-token sequences"),
        (["--gpu", "h100", "--gpus", "3"], "do not split over 3 GPUs"),
        (["--budget", "-5"], "--budget -5: give a number above 0"),
        (["--gpu", "x1"], "unknown GPU 'x1'"),
        (["--price", "2"], "--price prices a machine you name"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path) -> None:
    result = runner.invoke(app, ["plan", "--reports-dir", str(tmp_path), *args])
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_scaling_model_leave_one_out_is_stored_and_within_its_bound() -> None:
    """Each published multi-GPU point predicted by the link model with DDP_FACTOR fitted on the others."""
    assert round(fit_factor(point_ratios()), 2) == DDP_FACTOR
    recomputed = leave_one_out_errors()
    assert [name for name, _ in recomputed] == [name for name, _ in SCALING_LEAVE_ONE_OUT]
    for (_, error), (_, stored) in zip(recomputed, SCALING_LEAVE_ONE_OUT, strict=True):
        assert error == pytest.approx(stored, abs=0.001)
        assert abs(error) <= SCALING_BOUND


def test_a_scaling_point_mixing_programs_is_refused() -> None:
    """Data parallelism never beats linear scaling: an efficiency above 1 means the 1-GPU figure is another program's
    (llm.c's 8x H100 over the RunPod PyTorch script's one H100 came out at 1.011), and a projected 1-GPU figure is
    the model measuring itself."""
    assert all(p.efficiency <= 1 and p.single_basis.startswith("measured") for p in SCALING_POINTS)
    llmc = Workload(12, 12, 768, 50304, 1024, 64)
    with pytest.raises(ValueError, match="efficiency 1.011 > 1"):
        ScalingPoint("llmc-8xh100", "h100-sxm", 8, llmc, 524_288 / 0.139, 466_440, "measured: another program", "")
    with pytest.raises(ValueError, match="must be measured with the same program"):
        ScalingPoint("nanogpt-110", "a100-sxm4-40gb", 8, llmc, 874_591, 157_514, "projected: gptbench's roofline", "")


def test_without_held_out_points_the_scaling_band_is_wide_and_says_so() -> None:
    low, high = scaling_band()
    assert len(SCALING_LEAVE_ONE_OUT) < 3 and (low, high) == pytest.approx((1 / 2.25, 2.25))
    assert scaling_band(0.8)[1] == pytest.approx(1 / 0.8)  # never past linear scaling
    assert scaling_evidence(find_gpu("h100-sxm"), 8).startswith("scaling: not validated")


def test_pcie_scales_worse_than_nvlink_for_a_big_model(tmp_path: Path) -> None:
    """The link matters: 774M on 8 GPUs over PCIe Gen4 loses more to the all-reduce than over NVLink."""
    pcie = make_plan(PlanRequest(1e9, model="774m", gpu="a100-pcie-80gb", gpus=8, price_usd=1.0), tmp_path).options[0]
    nvlink = make_plan(PlanRequest(1e9, model="774m", gpu="a100-sxm4-80gb", gpus=8), tmp_path).options[0]
    assert pcie.scaling_efficiency < nvlink.scaling_efficiency <= DDP_FACTOR



def test_pareto_marks_only_options_nothing_beats_on_both() -> None:
    from gptbench.cloud.setup import Setup

    zero = Setup(0.0, "", 0.0, 0, 0.0, 0.0)
    rows = [
        Option("a", "catalog", "x", 1, "projected", "", train_hours=10, setup=zero, cost_usd=10),
        Option("b", "catalog", "x", 1, "projected", "", train_hours=5, setup=zero, cost_usd=20),
        Option("c", "catalog", "x", 1, "projected", "", train_hours=6, setup=zero, cost_usd=25),  # b is faster and cheaper
        Option("d", "catalog", "x", 1, "projected", "", train_hours=10, setup=zero, cost_usd=12),  # a: as fast, cheaper
        Option("e", "catalog", "x", 1, "projected", "", problem="does not fit"),
    ]
    assert {o.where for o in pareto(rows) if o.pareto} == {"a", "b"}


def test_deadline_and_budget_answers_and_nothing_meets_them(tmp_path: Path) -> None:
    plan = make_plan(PlanRequest(10e9, max_hours=4, budget_usd=50), tmp_path)
    deadline, budget = plan.answers["cheapest_within_deadline"], plan.answers["fastest_within_budget"]
    assert deadline and deadline.met and budget and budget.met
    within = [o for o in plan.options if o.hours is not None and o.hours <= 4 and o.cost_usd is not None]
    assert deadline.where == min(within, key=lambda o: o.cost_usd or 0).where
    never = make_plan(PlanRequest(10e9, max_hours=0.01, budget_usd=0.01), tmp_path).answers
    assert never["cheapest_within_deadline"] and not never["cheapest_within_deadline"].met
    assert "nothing finishes within 0.01 h" in never["cheapest_within_deadline"].text
    assert never["fastest_within_budget"] and "nothing costs $0.01 or less" in never["fastest_within_budget"].text


def test_json_shape_and_your_own_machine(tmp_path: Path) -> None:
    shutil.copy(REFERENCE / "20261128-232816_vm_amd-epyc.json", tmp_path)  # the CPU VM alone: one machine of yours
    args = ["plan", "--tokens", "10e9", "--kwh-price", "0.30", "--power-w", "100", "--reports-dir", str(tmp_path), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    keys = {"where", "gpu", "gpus", "micro_batch", "grad_accum", "sharding", "activation_checkpointing", "fits"}
    keys |= {"tokens_per_sec", "scaling_efficiency", "train_hours", "setup_hours", "hours", "cost_usd", "pareto", "evidence"}
    assert all(keys <= set(o) for o in data["options"])
    assert {"cheapest_within_deadline", "fastest_within_budget", "own_machine"} <= set(data["answers"])
    own = [o for o in data["options"] if o["kind"] == "own"]
    assert len(own) == 1 and own[0]["gpu"] == "cpu" and own[0]["tokens_per_sec"] == pytest.approx(283.835, abs=0.01)
    assert own[0]["cost_usd"] == pytest.approx(own[0]["hours"] * 0.1 * 0.30)  # 100 W at $0.30/kWh
    assert data["answers"]["own_machine"]["where"] == own[0]["where"]


def test_plan_never_imports_torch_or_pandas(tmp_path: Path) -> None:
    args = ["-X", "importtime", "-m", "gptbench", "plan", "--reports-dir", str(tmp_path)]
    result = subprocess.run([sys.executable, *args], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert "gptbench.cloud.plan" in imported
    assert not [m for m in imported if m.split(".")[0] in ("torch", "pandas", "numpy")]


def test_html_is_never_written_over_an_existing_file(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    page = tmp_path / "plan.html"
    page.write_text("mine")
    result = runner.invoke(app, ["plan", "--reports-dir", str(tmp_path), "--html", str(page)])
    assert result.exit_code == 2 and "--force" in result.stderr and page.read_text() == "mine"


def test_the_chart_shows_the_pareto_front_in_a_browser(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    image = pytest.importorskip("PIL.Image")
    chromium = Path("/usr/bin/chromium")
    if not chromium.exists():
        pytest.skip("needs Chromium (apt-get install chromium)")
    page = tmp_path / "plan.html"
    result = runner.invoke(app, ["plan", "--max-hours", "4", "--reports-dir", str(tmp_path), "--html", str(page)])
    assert result.exit_code == 0, result.output
    png = tmp_path / "plan.png"
    screenshot(page, png, tmp_path / "profile")
    colours = image.open(png).convert("RGB").getcolors(maxcolors=1 << 24)

    def near(rgb: tuple[int, int, int]) -> int:
        return sum(n for n, c in colours if all(abs(a - b) <= 6 for a, b in zip(c, rgb, strict=True)))

    # the Pareto front (line and points) is drawn red, the other options blue: both must be on screen
    assert near((214, 39, 40)) > 500 and near((31, 119, 180)) > 300


def test_checkpointing_recompute_is_counted_once() -> None:
    """`project` puts the recomputed block forwards in backward already; the scaling model's phases must not add
    them again (they did: a checkpointed 1558M step on an H100 came out 1.25x the projection's)."""
    from dataclasses import replace

    from gptbench.predict.scaling import phases_for

    spec = find_gpu("h100-sxm")
    w = replace(workload_for("1558m", 1024, 4, "bf16", True, "sdpa", 4), activation_checkpointing=True)
    p, phases = project(w, spec), phases_for(w, spec)
    assert phases.step_s == pytest.approx(p.step_time_s)
    assert phases.backward_s == pytest.approx(p.phase_time_s["backward"] / w.grad_accum)


def test_your_machine_keeps_the_switches_it_was_measured_with(tmp_path: Path) -> None:
    """A report run with --shard optimizer and checkpointing is that configuration in the plan's row, not plain DDP."""
    data = json.loads((REFERENCE / "20261128-232816_vm_amd-epyc.json").read_text())
    data["runs"][0]["config"].update(shard="optimizer", activation_checkpointing=True)
    (tmp_path / "mine.json").write_text(json.dumps(data))
    args = ["plan", "--tokens", "10e9", "--reports-dir", str(tmp_path), "--json"]
    (own,) = [o for o in json.loads(runner.invoke(app, args).stdout)["options"] if o["kind"] == "own"]
    assert (own["sharding"], own["activation_checkpointing"]) == ("optimizer", True)


def test_json_answers_carry_the_numbers_of_the_option_they_name(tmp_path: Path) -> None:
    """A script reads an answer's option, GPUs, hours, cost and band as numbers, never from the sentence."""
    args = ["plan", "--tokens", "10e9", "--max-hours", "4", "--budget", "100", "--reports-dir", str(tmp_path), "--json"]
    data = json.loads(runner.invoke(app, args).stdout)
    for key in ("cheapest_within_deadline", "fastest_within_budget", "cheapest", "fastest"):
        a = data["answers"][key]
        o = data["options"][a["option"] - 1]  # the table's #: 1-based rank, cheapest first
        assert (a["where"], a["gpu"], a["gpus"], a["basis"]) == (o["where"], o["gpu"], o["gpus"], o["basis"])
        assert (a["hours"], a["cost_usd"], a["hours_range"], a["cost_range_usd"]) == (
            o["hours"], o["cost_usd"], o["hours_range"], o["cost_range_usd"],
        )  # fmt: skip
        assert a["hours_range"][0] <= a["hours"] <= a["hours_range"][1]
    assert data["answers"]["cheapest_within_deadline"]["hours"] <= 4
    assert data["answers"]["fastest_within_budget"]["cost_usd"] <= 100


def test_tokenizing_is_billed_at_the_rented_machines_cpus(tmp_path: Path) -> None:
    """The same GPUs with 2, 65 and unlisted vCPUs: prepare's default workers (vCPUs - 1) tokenize at the measured
    one-worker rate each; unlisted is billed at one worker; --data shards bills nothing."""
    from gptbench.cloud.setup import PREPARE_TOKENS_PER_SEC

    head = "provider,instance,gpu,gpus,price_per_hour_usd,price_basis,observed,source,notes,vcpus,vcpus_source\n"
    rows = [f"p,{name},h100-sxm,8,20,on-demand,2026-01-01,test,,{vcpus},test\n" for name, vcpus in (("a", 2), ("b", 65))]
    catalog = tmp_path / "prices.csv"
    catalog.write_text(head + "".join(rows) + "p,c,h100-sxm,8,20,on-demand,2026-01-01,test,,,\n")
    plan = make_plan(PlanRequest(10e9), tmp_path, catalog)
    prepare_h = {o.where: o.setup.prepare_s / 3600 for o in plan.options if o.setup}
    one_worker = 10e9 / PREPARE_TOKENS_PER_SEC / 3600
    assert prepare_h == pytest.approx({"p a": one_worker, "p b": one_worker / 64, "p c": one_worker})
    by_where = {o.where: o for o in plan.options}
    assert by_where["p a"].hours - by_where["p b"].hours == pytest.approx(one_worker * 63 / 64)
    assert by_where["p b"].cost_usd == pytest.approx(by_where["p b"].hours * 20)
    shards = make_plan(PlanRequest(10e9, data="shards"), tmp_path, catalog)
    assert all(o.setup and o.setup.prepare_s == 0 for o in shards.options)


def test_a_named_machine_bills_tokenizing_on_the_cpus_it_is_given(tmp_path: Path) -> None:
    """--gpu X --gpus N --price P --vcpus C: set-up tokenizes on C-1 workers, as catalog offers with a vCPU count do;
    without --vcpus it is one worker, and --vcpus without a named machine is refused in one line."""
    base = dict(gpu="h100-sxm", gpus=8, price_usd=2.5)
    one = next(o for o in make_plan(PlanRequest(10e9, **base), tmp_path).options if o.kind == "named")
    many = next(o for o in make_plan(PlanRequest(10e9, **base, vcpus=208), tmp_path).options if o.kind == "named")
    assert one.setup and many.setup and one.hours and many.hours and one.cost_usd and many.cost_usd
    assert one.setup.vcpus is None and many.setup.vcpus == 208
    assert many.setup.hours < one.setup.hours / 10  # 207 workers instead of one
    assert many.hours == pytest.approx(one.hours - (one.setup.hours - many.setup.hours))
    assert many.cost_usd == pytest.approx(many.hours * 2.5 * 8)
    result = runner.invoke(app, ["plan", "--tokens", "10e9", "--vcpus", "16", "--reports-dir", str(tmp_path)])
    assert result.exit_code == 2 and "--vcpus" in result.output and "Traceback" not in result.output
