"""`--model-factory`: your own module through the harness; counted FLOPs; where it came from; bad input in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from gptbench.bench.config import RunOptions, config_from_dict, config_to_dict, resolve_config
from gptbench.bench.flops import flops_per_token
from gptbench.bench.runner import run_benchmark
from gptbench.cli import app
from gptbench.errors import GptbenchError
from gptbench.model.config import GPTConfig
from gptbench.model.factory import COUNTED_FORMULA, ForeignModel, count_flops_per_token, loss_from, parse_args
from gptbench.model.gpt import GPT
from gptbench.studies.ablate import plan_ladder

runner = CliRunner()
EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "swiglu_gpt.py"
TINY_ARGS = ("n_layer=2", "n_head=2", "n_embd=64", "block_size=128")

# A module in the book's style: forward(idx) -> logits, its shape in a cfg dict; and one that returns a wrong shape.
FACTORIES = """
import torch
from torch import nn


class Logits(nn.Module):
    def __init__(self, vocab, width):
        super().__init__()
        self.cfg = {"vocab_size": vocab, "context_length": 32, "emb_dim": width}
        self.emb = nn.Embedding(vocab, width)
        self.head = nn.Linear(width, vocab, bias=False)

    def forward(self, idx):
        return self.head(self.emb(idx))


class Flat(Logits):
    def forward(self, idx):
        return self.head(self.emb(idx)).flatten(0, 1)


def book_style(vocab=500, width=16):
    return Logits(vocab, width)


def wrong_shape():
    return Flat(500, 16)


def not_a_module():
    return "a string"


def bare():
    return nn.Linear(4, 4)
"""


@pytest.fixture
def factories(tmp_path: Path) -> Path:
    path = tmp_path / "mine.py"
    path.write_text(FACTORIES, encoding="utf-8")
    return path


def test_counted_flops_match_6n_plus_12ltc_for_gptbenchs_own_model() -> None:
    """FlopCounterMode counts matmuls and attention: for gptbench's GPT that is 6 x (matmul weights) + 12LTC, within
    1% of the PaLM formula (whose N also holds biases and norms). Both count causal attention in full (QK^T and AV
    over all T x T scores), and neither counts the optimizer: the counter sees one forward and backward only."""
    config = GPTConfig(n_layer=2, n_head=2, n_embd=64, vocab_size=512, block_size=128)
    for attention in ("sdpa", "naive"):
        counted = count_flops_per_token(ForeignModel(GPT(config, attention), 512), 2, 128, 512, torch.device("cpu"))
        weights = 512 * 64 + 2 * 12 * 64 * 64  # head (tied) + qkv, proj, fc, proj
        assert counted == 6 * weights + 12 * 2 * 128 * 64
        assert counted == pytest.approx(flops_per_token(config, 128), rel=0.015)


def test_the_three_forward_conventions_give_a_loss() -> None:
    idx, targets = torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 3, dtype=torch.long)
    logits = torch.zeros(2, 3, 10)
    expected = torch.log(torch.tensor(10.0))
    assert torch.isclose(loss_from(logits, idx, targets, 10), expected)
    assert loss_from((logits, torch.tensor(1.5)), idx, targets, 10) == 1.5
    assert loss_from(torch.tensor(2.5), idx, targets, 10) == 2.5
    with pytest.raises(GptbenchError, match=r"shape \(6, 10\)"):
        loss_from(logits.flatten(0, 1), idx, targets, 10)


def test_model_args_become_python_values() -> None:
    assert parse_args(("n_layer=4", "mlp=swiglu", "bias=false", "p=0.1")) == {
        "n_layer": 4,
        "mlp": "swiglu",
        "bias": False,
        "p": 0.1,
    }
    with pytest.raises(GptbenchError, match="key=value"):
        parse_args(("n_layer",))


def test_example_factory_runs_and_is_recorded_with_counted_flops() -> None:
    options = RunOptions(
        device="cpu", model_factory=f"{EXAMPLE}:make_model", model_args=TINY_ARGS, seq_len=64, steps=1, warmup_steps=0
    )
    config = resolve_config(options)
    assert config.model.vocab_size == 50304 and config.factory.n_layer == 2  # read from the module's config
    run = run_benchmark(config)
    assert run.result.status == "ok" and run.result.flops_formula == COUNTED_FORMULA and run.result.flops_per_token > 0
    source = run.config.model.source
    assert source.kind == "file" and source.function == "make_model" and list(TINY_ARGS) == source.args
    assert len(source.sha256) == 64 and run.config.model.preset == "factory:swiglu_gpt.py:make_model"
    assert run.config.model.n_params == sum(p.numel() for p in run_model_params(config))


def run_model_params(config) -> list[torch.nn.Parameter]:  # noqa: ANN001
    from gptbench.model.factory import build_module

    return list(build_module(config.factory).parameters())


def test_a_module_that_exposes_its_shape_in_cfg_and_returns_logits(factories: Path) -> None:
    config = resolve_config(RunOptions(device="cpu", model_factory=f"{factories}:book_style", steps=1, warmup_steps=0))
    assert (config.model.vocab_size, config.seq_len, config.factory.n_embd) == (500, 32, 16)
    run = run_benchmark(config)
    assert run.result.status == "ok" and run.result.loss.first == pytest.approx(6.2, abs=0.5)  # ln(500) = 6.2


def test_the_factory_travels_to_worker_processes_as_data() -> None:
    options = RunOptions(device="cpu", model_factory=f"{EXAMPLE}:make_model", model_args=TINY_ARGS, seq_len=64)
    config = resolve_config(options)
    again = config_from_dict(json.loads(json.dumps(config_to_dict(config))))
    assert again == config and hash(again) == hash(config)


def test_ablate_skips_what_cannot_reach_a_foreign_model() -> None:
    options = RunOptions(device="cpu", model_factory=f"{EXAMPLE}:make_model", model_args=TINY_ARGS, seq_len=64)
    skipped = {p.name: p.skipped for p in plan_ladder(resolve_config(options))}
    assert "module's attention" in skipped["+ SDPA / flash attention"]
    assert "vocabulary" in skipped["+ vocabulary padded to 50304"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("missing.py:make", "no such file"),
        ("{f}:nothing", "has no function 'nothing'"),
        ("{f}:not_a_module", "not a torch.nn.Module"),
        ("{f}:wrong_shape", "gptbench needs logits of shape"),
        ("{f}", "FILE.py:FUNCTION"),
        ("no_such_package_xyz.mod:fn", "cannot import module"),
        ("{f}:bare", "no context length; pass --seq"),
    ],
)
def test_bad_factories_are_one_line_and_write_nothing(spec: str, message: str, factories: Path, tmp_path: Path) -> None:
    out = tmp_path / "reports"
    args = ["run", "--device", "cpu", "--model-factory", spec.format(f=factories), "--steps", "1", "--warmup", "0"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not out.exists() or not list(out.glob("*.json"))


def test_compare_tells_two_versions_of_a_factory_model_apart(tmp_path: Path) -> None:
    """Same file, same function, same shape: only the source's hash differs, and compare says so."""
    import dataclasses

    from report_fixtures import laptop

    from gptbench.reports.schema import ModelShape, ModelSource
    from gptbench.reports.store import write_report
    from gptbench.views.compare import CompareOptions, compare
    from gptbench.views.load import load_runs

    for sha in ("a" * 64, "b" * 64):
        report = laptop()
        source = ModelSource("file", "/home/me/mine.py", "make_model", ["n_layer=2"], sha)
        shape = ModelShape("factory:mine.py:make_model", 2, 2, 64, 50304, 128, 3_000_000, source=source)
        report.runs = [dataclasses.replace(r, config=dataclasses.replace(r.config, model=shape)) for r in report.runs]
        write_report(report, tmp_path)
    result = compare(load_runs([tmp_path]), CompareOptions())
    assert any(d.startswith("model source") and "sha256 aaaaaaaaaaaa" in d for d in result.differences)


def test_sweep_runs_a_factory_model_in_worker_processes(tmp_path: Path) -> None:
    """`sweep` measures each point in a fresh process, which rebuilds the module from the config's plain data."""
    args = ["sweep", "--device", "cpu", "--model-factory", f"{EXAMPLE}:make_model", "--batch", "1,2", "--seq", "32"]
    for pair in TINY_ARGS:
        args += ["--model-arg", pair]
    result = runner.invoke(app, [*args, "--steps", "1", "--warmup", "0", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    (path,) = tmp_path.glob("*.json")
    runs = json.loads(path.read_text())["runs"]
    assert [r["result"]["status"] for r in runs] == ["ok", "ok"]
    assert {r["result"]["flops_formula"] for r in runs} == {COUNTED_FORMULA}
    assert all(r["config"]["model"]["source"]["function"] == "make_model" for r in runs)
