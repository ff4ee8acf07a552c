"""`gptbench chapter5`: the book's data split as known answers, sampling, and a one-epoch run that `compare` reads."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from gptbench.cli import app
from gptbench.errors import GptbenchError
from gptbench.model.config import GPTConfig
from gptbench.model.gpt import GPT
from gptbench.studies.chapter5 import BOOK_EPOCH_LOSSES, NOTEBOOK, Chapter5Config, generate, split_text

runner = CliRunner()


def test_the_verdict_splits_as_the_book_says(verdict: Path) -> None:
    """The book's loaders: 9 training batches of 2 x 256 tokens (4,608 tokens) and 1 validation batch (512)."""
    train, val = split_text(verdict.read_text(encoding="utf-8"), Chapter5Config(device="cpu"))
    assert len(train.batches(2, torch.Generator().manual_seed(0), drop_last=True)) == 9
    assert len(val.batches(2, None, drop_last=False)) == 1
    assert train.inputs.shape == (18, 256) and torch.equal(train.inputs[0, 1:], train.targets[0, :-1])


NOTEBOOK_OUTPUT = Path(__file__).parent / "data" / "ch05_notebook_training_output.txt"


def test_book_losses_are_the_notebooks_printed_values() -> None:
    """BOOK_EPOCH_LOSSES is the last evaluation of each epoch in the notebook's printed output (recorded verbatim in
    tests/data, with the commit it was read at), not a number typed twice."""
    last: dict[int, tuple[float, float]] = {}
    for line in NOTEBOOK_OUTPUT.read_text(encoding="utf-8").splitlines():
        m = re.fullmatch(r"Ep (\d+) \(Step (\d+)\): Train loss ([\d.]+), Val loss ([\d.]+)", line)
        if m:
            last[int(m[1])] = (float(m[3]), float(m[4]))
    assert len(last) == 10
    assert BOOK_EPOCH_LOSSES == tuple(last[epoch] for epoch in sorted(last))
    assert "016d230e" in NOTEBOOK and "016d230e6f341476678a4d8912f6cec6bc68a827" in NOTEBOOK_OUTPUT.read_text()


def test_the_rtx3090_time_cites_its_primary_source() -> None:
    """The RTX 3090 figure was 'as reported to gptbench' with no source; the blog post that started this project is it."""
    from gptbench.studies.chapter5 import PUBLISHED_TIMES

    (source,) = [source for name, _, source in PUBLISHED_TIMES if name == "RTX 3090"]
    assert "it took just less than eleven seconds" in source and "Giles Thomas" in source and "gilesthomas.com" in source


def test_top_k_sampling_stays_within_the_top_k() -> None:
    torch.manual_seed(0)
    model = GPT(GPTConfig.from_name("book-tiny")).eval()
    with torch.no_grad():
        allowed = set(torch.topk(model(torch.tensor([[6109, 3626]]))[0, -1], 3).indices.tolist())
    torch.manual_seed(1)
    assert generate(model, [6109, 3626], 1, temperature=5.0, top_k=3)[-1] in allowed
    assert generate(model, [6109, 3626], 4) == generate(model, [6109, 3626], 4)  # greedy is deterministic


def test_bad_settings_are_refused() -> None:
    with pytest.raises(GptbenchError, match="--epochs"):
        Chapter5Config(device="cpu", epochs=0)
    result = runner.invoke(app, ["chapter5", "--device", "cpu", "--model", "124m"])
    assert result.exit_code == 2 and "book-" in result.output


def test_one_epoch_writes_a_report_compare_reads(tmp_path: Path, verdict: Path) -> None:
    text = tmp_path / "short.txt"
    text.write_text(verdict.read_text(encoding="utf-8")[:3000], encoding="utf-8")  # at context 64: 5 batches, 1 validation
    out = tmp_path / "reports"
    args = ["chapter5", "--device", "cpu", "--model", "book-tiny", "--epochs", "1", "--context", "64", "--text", str(text)]
    args += ["--out", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "MacBook Air" in result.output and "RTX 3090" in result.output
    (path,) = out.glob("*.json")
    c5 = json.loads(path.read_text())["runs"][0]["result"]["chapter5"]
    assert c5["steps"] == 5 and c5["train_tokens"] == 5 * 2 * 64 and c5["wall_s"] > 0
    assert [e["step"] for e in c5["evals"]] == [0] and c5["epoch_losses"][0]["epoch"] == 1
    assert c5["sample"].startswith("Every effort moves you") and len(c5["epoch_samples"]) == 1
    compared = runner.invoke(app, ["compare", str(out), "--json"])
    assert compared.exit_code == 0 and "book-tiny" in compared.output
