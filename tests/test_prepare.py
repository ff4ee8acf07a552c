from __future__ import annotations

import gzip
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from gptbench.cli import app
from gptbench.data import corpus
from gptbench.data import prepare as prep
from gptbench.data.corpus import split_long
from gptbench.data.prepare import PrepareConfig, PrepareInterrupted, parse_count, prepare
from gptbench.data.shards import read_shard
from gptbench.errors import GptbenchError
from gptbench.model.tokenizer import EOT_TOKEN, gpt2_encoding
from gptbench.reports.store import load_report

runner = CliRunner()
ENC = gpt2_encoding()


def paragraphs(verdict: Path) -> list[str]:
    return [p for p in verdict.read_text().split("\n\n") if p.strip()]


def expected_ids(docs: list[str]) -> list[int]:
    """What a prepared folder must hold: EOT, then the GPT-2 ids of each (non-empty) document, in order."""
    ids: list[int] = []
    for doc in docs:
        if doc:
            ids += [EOT_TOKEN, *ENC.encode_ordinary(doc)]
    return ids


def shard_ids(folder: Path, name: str = "corpus") -> list[int]:
    """Every shard of `name` in order: val first, then train."""
    paths = sorted(folder.glob(f"{name}_val_*.bin")) + sorted(folder.glob(f"{name}_train_*.bin"))
    return [int(t) for p in paths for t in read_shard(p)]


def write_jsonl(path: Path, docs: list[str], field: str = "text") -> Path:
    path.write_text("".join(json.dumps({field: d, "id": i}) + "\n" for i, d in enumerate(docs)))
    return path


def config(tmp_path: Path, *inputs: Path, **kwargs: object) -> PrepareConfig:
    return PrepareConfig(inputs=tuple(inputs), out_dir=tmp_path / "shards", **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "count"),
    [("100M", 100_000_000), ("1e8", 100_000_000), ("2.5B", 2_500_000_000), ("100000", 100_000), ("4k", 4000), ("1.5K", 1500)],
)
def test_parse_count_reads_suffixes_and_exponents(text: str, count: int) -> None:
    assert parse_count(text, "--shard-tokens") == count


@pytest.mark.parametrize("text", ["100Q", "0", "-5", "1.5", "", "M", "1e-3", "1..5M"])
def test_parse_count_refuses_what_is_not_a_positive_count(text: str) -> None:
    with pytest.raises(GptbenchError, match="--shard-tokens .*positive whole number"):
        parse_count(text, "--shard-tokens")


def test_known_ids() -> None:
    assert expected_ids(["Hello world", ""]) == [50256, 15496, 995]  # GPT-2's ids for "Hello" and " world"


def test_round_trip_across_shards(tmp_path: Path, verdict: Path) -> None:
    docs = [*paragraphs(verdict)[:20], "Hello world", "", "naïve café, 日本語 — ünïcödé"]
    result = prepare(config(tmp_path, write_jsonl(tmp_path / "c.jsonl", docs), shard_tokens=300, workers=1))
    names = [p.name for p in result.shards]
    assert names[:3] == ["corpus_val_000000.bin", "corpus_train_000001.bin", "corpus_train_000002.bin"]
    assert shard_ids(tmp_path / "shards") == expected_ids(docs)
    assert result.documents == len(docs) - 1 and result.tokens == len(expected_ids(docs))
    sizes = [len(read_shard(p)) for p in result.shards]
    assert all(s == 300 for s in sizes[:-1]) and 0 < sizes[-1] <= 300
    assert any(read_shard(p)[0] != EOT_TOKEN for p in result.shards[1:])  # a document continues into the next shard


def test_worker_processes_write_the_same_shards(tmp_path: Path, verdict: Path) -> None:
    docs = paragraphs(verdict) * 3
    corpus = write_jsonl(tmp_path / "c.jsonl", docs)
    one = prepare(PrepareConfig(inputs=(corpus,), out_dir=tmp_path / "one", shard_tokens=2000, workers=1, batch_chars=3000))
    two = prepare(PrepareConfig(inputs=(corpus,), out_dir=tmp_path / "two", shard_tokens=2000, workers=2, batch_chars=3000))
    assert two.workers == 2  # the spawned pool really ran
    assert [p.read_bytes() for p in one.shards] == [p.read_bytes() for p in two.shards]
    assert shard_ids(tmp_path / "two") == expected_ids(docs)


def test_split_long_never_changes_the_tokens(verdict: Path) -> None:
    # Cuts must fall where GPT-2's pre-tokenizer starts a new piece anyway; whitespace runs are the trap.
    alphabet = [*"ab Z9.'\n\t", "  ", "\n\n", "'s", "'ll", "é", "\u00a0", "\u3000", "日本", "\r\n", "!!", " 42"]
    rng = random.Random(0)
    texts = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 60))) for _ in range(400)]
    # GPT-2 has tokens for whitespace runs such as " \xa0 \xa0" (11504): a cut inside one would split it.
    tricky = ["a \xa0 \xa0 b", "x\n\n  y", "end \xa0 \xa0", "it's  ok\t \nnow", "run  \u3000 here"]
    cases = [(text, rng.randint(1, 20)) for text in [*texts, verdict.read_text()]]
    cases += [(text, limit) for text in tricky for limit in range(1, len(text))]
    for text, limit in cases:
        pieces = split_long(text, limit)
        assert "".join(pieces) == text
        assert [t for p in pieces for t in ENC.encode_ordinary(p)] == ENC.encode_ordinary(text), repr(text)
    assert max(len(p) for p in split_long(verdict.read_text(), 100)) <= 100


def test_text_files_one_document_each_or_split(tmp_path: Path, verdict: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corpus, "READ_BYTES", 7)  # blocks that split UTF-8 characters and separators
    text = verdict.read_text() + "\n\nnaïve café 日本語\n\n"
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text(text)
    b.write_text("second file")
    whole = prepare(config(tmp_path, a, b, shard_tokens=1000, workers=1, batch_chars=50, name="whole"))
    assert whole.documents == 2 and shard_ids(tmp_path / "shards", "whole") == expected_ids([text, "second file"])
    split = prepare(config(tmp_path, a, b, split_on="\n\n", shard_tokens=1000, workers=1, batch_chars=50, name="split"))
    docs = [*text.split("\n\n"), "second file"]
    assert split.documents == len([d for d in docs if d]) and shard_ids(tmp_path / "shards", "split") == expected_ids(docs)


def test_parquet_column_and_gzipped_jsonl(tmp_path: Path, verdict: Path) -> None:
    pytest.importorskip("pyarrow", reason="writing and reading parquet needs pyarrow (the GPU image has none)")
    docs = paragraphs(verdict)[:30]
    pd.DataFrame({"id": range(len(docs)), "content": docs}).to_parquet(tmp_path / "c.parquet")
    with gzip.open(tmp_path / "c.jsonl.gz", "wt") as f:
        f.writelines(json.dumps({"content": d}) + "\n" for d in docs)
    prepare(config(tmp_path, tmp_path / "c.parquet", tmp_path / "c.jsonl.gz", column="content", shard_tokens=500, workers=1))
    assert shard_ids(tmp_path / "shards") == expected_ids(docs + docs)
    with pytest.raises(GptbenchError, match=r"no column 'text' \(it has: id, content\); choose one with --column"):
        prepare(config(tmp_path, tmp_path / "c.parquet", name="other"))
    with pytest.raises(GptbenchError, match="column 'id' holds int64, not text"):
        prepare(config(tmp_path, tmp_path / "c.parquet", column="id", name="other"))


def cli(tmp_path: Path, *args: str) -> object:
    return runner.invoke(app, ["prepare", *args, "--out", str(tmp_path / "shards")])


def assert_one_line_exit_2(result: object, message: str) -> None:
    assert result.exit_code == 2, result.output  # type: ignore[attr-defined]
    assert message in result.stderr  # type: ignore[attr-defined]
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.output  # type: ignore[attr-defined]


def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, verdict: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    good = str(write_jsonl(tmp_path / "good.jsonl", ["a document"]))
    (tmp_path / "nofield.jsonl").write_text('{"text": "ok"}\n{"body": "no text"}\n')
    (tmp_path / "broken.jsonl").write_text('{"text": "ok"}\n{"text": \n')
    (tmp_path / "binary.txt").write_bytes(b"abc\xff\xfe\x00")
    (tmp_path / "c.parquet").write_bytes(b"PAR1 not really")
    cases = [
        ([str(tmp_path / "missing.txt")], "missing.txt: no such file or folder"),
        ([str(tmp_path / "*.parquetx")], "no input files match"),
        ([good, "--shard-tokens", "100Q"], "--shard-tokens '100Q': give a positive whole number"),
        ([good, "--shard-tokens", "0"], "--shard-tokens '0'"),
        ([good, "--shard-tokens", "3B"], "must be between 1 and 2,147,483,647"),
        ([good, "--workers", "0"], "--workers 0: give a whole number from 1"),
        (
            [str(tmp_path / "nofield.jsonl")],
            "nofield.jsonl:2: no field 'text' in this JSON line; name the text field with --column",
        ),
        ([str(tmp_path / "broken.jsonl")], "broken.jsonl:2: not a JSON line"),
        ([str(tmp_path / "binary.txt")], "binary.txt: not UTF-8 text"),
    ]
    for args, message in cases:
        assert_one_line_exit_2(cli(tmp_path, *args), message)
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # as if pyarrow were not installed
    assert_one_line_exit_2(cli(tmp_path, str(tmp_path / "c.parquet")), "reading parquet needs pyarrow: pip install pyarrow")
    assert not (tmp_path / "shards").exists()  # nothing written


def test_a_damaged_parquet_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow", reason="telling a damaged parquet file needs pyarrow to read it (the GPU image has none)")
    (tmp_path / "c.parquet").write_bytes(b"PAR1 not really")
    assert_one_line_exit_2(cli(tmp_path, str(tmp_path / "c.parquet")), "c.parquet: cannot read as parquet")
    assert not (tmp_path / "shards").exists()


def test_existing_shards_are_kept_unless_force(tmp_path: Path, verdict: Path) -> None:
    out = tmp_path / "shards"
    out.mkdir()
    others = [out / "other_train_000001.bin", out / "corpus-v2_train_000001.bin", out / "notes.txt"]
    for path in others:
        path.write_bytes(b"not mine")
    assert cli(tmp_path, str(verdict), "--shard-tokens", "2k").exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    refused = cli(tmp_path, str(verdict), "--shard-tokens", "1k")
    assert_one_line_exit_2(refused, f"--out {out} already holds 3 'corpus' shards")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    forced = cli(tmp_path, str(verdict), "--shard-tokens", "4k", "--force")
    assert forced.exit_code == 0 and "wrote 2 shards (1 val shard + 1 train)" in forced.output
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["corpus_val_000000.bin", "corpus_train_000001.bin", *(p.name for p in others)]
    )
    assert all(p.read_bytes() == b"not mine" for p in others)


def test_interrupt_keeps_complete_shards_only(tmp_path: Path, verdict: Path) -> None:
    def stop_after_two_shards(p: prep.PrepareProgress) -> None:
        if p.shards >= 2:
            raise KeyboardInterrupt

    corpus = write_jsonl(tmp_path / "c.jsonl", paragraphs(verdict) * 4)
    with pytest.raises(PrepareInterrupted) as info:
        prepare(config(tmp_path, corpus, shard_tokens=1000, workers=1, batch_chars=500), stop_after_two_shards)
    shards = info.value.shards
    assert len(shards) >= 2 and sorted(os.listdir(tmp_path / "shards")) == sorted(p.name for p in shards)
    assert all(len(read_shard(p)) == 1000 for p in shards)


def test_interrupt_while_writing_a_shard_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gptbench import atomic
    from gptbench.data import shards

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(atomic.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        shards.write_shard(tmp_path / "x_train_000001.bin", np.arange(10, dtype=np.uint16))
    assert not any(tmp_path.iterdir())


def test_cli_interrupt_exits_130_with_the_shard_count(tmp_path: Path, verdict: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    tokenize = prep.tokenize_pieces

    def interrupt_on_third_batch(pieces: list[prep.Piece]) -> np.ndarray:
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return tokenize(pieces)

    monkeypatch.setattr(prep, "tokenize_pieces", interrupt_on_third_batch)
    corpus = write_jsonl(tmp_path / "c.jsonl", paragraphs(verdict) * 200)  # ~4 MB: batches of 1 MiB of text
    result = cli(tmp_path, str(corpus), "--shard-tokens", "100k", "--workers", "1")
    assert result.exit_code == 130, result.output
    done = sorted((tmp_path / "shards").iterdir())
    assert f"interrupted: {len(done)} complete shards" in result.stderr and len(done) >= 1
    assert all(len(read_shard(p)) == 100_000 for p in done)


def test_ctrl_c_with_worker_processes(tmp_path: Path, verdict: Path) -> None:
    """A real SIGINT to the whole process group, as a terminal's Ctrl-C sends it, while two workers tokenize."""
    docs = paragraphs(verdict)
    corpus = write_jsonl(tmp_path / "c.jsonl", [" ".join(docs[i % len(docs) :]) for i in range(2000)])  # ~20 MB
    out = tmp_path / "shards"
    cmd = [sys.executable, "-m", "gptbench", "prepare", str(corpus), "--out", str(out), "--shard-tokens", "20k", "--workers", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while not list(out.glob("*.bin")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.killpg(proc.pid, signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted:" in stderr and "complete shards" in stderr and "Traceback" not in stderr
    shards = sorted(out.iterdir())
    assert shards and all(p.suffix == ".bin" for p in shards)  # no temporary file left
    assert all(len(read_shard(p)) == 20_000 for p in shards)  # every named shard is whole


def test_run_trains_on_prepared_shards(tmp_path: Path, verdict: Path) -> None:
    out = tmp_path / "shards"
    assert cli(tmp_path, str(verdict), "--shard-tokens", "1k").exit_code == 0
    args = ["run", "--device", "cpu", "--model", "tiny", "--steps", "2", "--warmup", "1", "--seq", "64", "--data", str(out)]
    result = runner.invoke(app, [*args, "--out", str(tmp_path / "reports")])
    assert result.exit_code == 0, result.output
    run = load_report(next((tmp_path / "reports").iterdir())).runs[0]
    assert run.config.data == f"shards:{out.resolve()}"
    assert run.result.data_wait_fraction is not None and 0 <= run.result.data_wait_fraction < 1
    assert "data wait" in result.output

    truncated = out / "corpus_train_000002.bin"
    truncated.write_bytes(truncated.read_bytes()[:-7])
    refused = runner.invoke(app, [*args, "--out", str(tmp_path / "reports2")])
    assert_one_line_exit_2(refused, f"{truncated}: shard is truncated or corrupt")
    assert not (tmp_path / "reports2").exists()


def test_json_is_what_was_written(tmp_path: Path) -> None:
    """`prepare --json`: stdout is one JSON object naming the shards on disk and the counts the summary gives."""
    source = write_jsonl(tmp_path / "docs.jsonl", ["one document", "and another one"])
    result = cli(tmp_path, str(source), "--workers", "1", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["schema"] == "gptbench.prepare/1" and data["documents"] == 2 and data["workers"] == 1
    assert [Path(p).name for p in data["shards"]] == sorted(p.name for p in (tmp_path / "shards").glob("*.bin"))
    assert data["tokens"] > 0 and data["tokens_per_sec"] > 0
