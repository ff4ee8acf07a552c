from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gptbench.data.shards import HEADER_BYTES, MAGIC, find_shards, read_shard, write_shard
from gptbench.data.sources import DataSpec, make_source, read_text_tokens
from gptbench.errors import GptbenchError

CPU = torch.device("cpu")


def test_shard_round_trip_and_header(tmp_path: Path) -> None:
    tokens = np.arange(1000, dtype=np.uint16)
    path = write_shard(tmp_path / "x_train_000001.bin", tokens)
    header = np.fromfile(path, dtype=np.int32, count=3)
    assert list(header) == [MAGIC, 1, 1000]
    assert path.stat().st_size == HEADER_BYTES + 2000
    assert np.array_equal(read_shard(path), tokens)
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("magic", "magic number 7, expected 20240520"),
        ("version", "unsupported shard version 2"),
        ("truncate", "truncated or corrupt: header says 100 tokens"),
        ("tiny", "shorter than the 1024-byte header"),
    ],
)
def test_damaged_shards_are_refused_by_name(tmp_path: Path, damage: str, message: str) -> None:
    path = write_shard(tmp_path / "bad.bin", np.arange(100, dtype=np.uint16))
    raw = bytearray(path.read_bytes())
    if damage == "magic":
        raw[0:4] = np.int32(7).tobytes()
    elif damage == "version":
        raw[4:8] = np.int32(2).tobytes()
    elif damage == "truncate":
        raw = raw[:-10]
    else:
        raw = raw[:100]
    path.write_bytes(bytes(raw))
    with pytest.raises(GptbenchError, match=message) as info:
        read_shard(path)
    assert str(path) in str(info.value)


def test_find_shards_prefers_train_split(tmp_path: Path) -> None:
    for name in ("c_val_000000.bin", "c_train_000001.bin", "c_train_000002.bin"):
        write_shard(tmp_path / name, np.zeros(10, dtype=np.uint16))
    assert [p.name for p in find_shards(tmp_path)] == ["c_train_000001.bin", "c_train_000002.bin"]
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(GptbenchError, match="no token shards"):
        find_shards(empty)


def test_shard_batches_are_shifted_windows(tmp_path: Path) -> None:
    write_shard(tmp_path / "s_train_000001.bin", np.arange(5000, dtype=np.uint16))
    source = make_source(DataSpec.parse(str(tmp_path)), batch=4, seq=32, device=CPU)
    x, y = source.next_batch()
    assert x.shape == y.shape == (4, 32) and x.dtype == torch.int64
    assert torch.equal(y[:, :-1], x[:, 1:])
    assert torch.equal(x[:, 1:] - x[:, :-1], torch.ones(4, 31, dtype=torch.int64))  # contiguous windows


def test_text_source_tokenizes_the_file(verdict: Path) -> None:
    tokens = read_text_tokens(verdict)
    assert 5000 < len(tokens) < 6000  # the chapter 5 text is 5,145 GPT-2 tokens
    source = make_source(DataSpec.parse(str(verdict)), batch=2, seq=64, device=CPU)
    x, y = source.next_batch()
    assert x.shape == (2, 64) and int(x.max()) < 50257


def test_data_spec_parsing(tmp_path: Path, verdict: Path) -> None:
    assert DataSpec.parse("synthetic").kind == "synthetic"
    assert DataSpec.parse(str(verdict)).kind == "text"
    assert DataSpec.parse(str(tmp_path)).kind == "shards"
    with pytest.raises(GptbenchError, match="no such file or folder"):
        DataSpec.parse(str(tmp_path / "missing.txt"))


def test_text_too_short_for_seq(tmp_path: Path) -> None:
    short = tmp_path / "short.txt"
    short.write_text("just a few words")
    with pytest.raises(GptbenchError, match="too few for --seq 64"):
        make_source(DataSpec.parse(str(short)), batch=1, seq=64, device=CPU)


def test_synthetic_batches_are_in_vocab() -> None:
    x, y = make_source(DataSpec(), batch=3, seq=16, device=CPU).next_batch()
    assert x.shape == (3, 16) and int(x.max()) < 50257 and int(x.min()) >= 0
    assert torch.equal(x[:, 1:], y[:, :-1])
