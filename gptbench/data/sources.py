"""Where the train step's batches come from: random tokens, a tokenized text file, or token shards."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from gptbench.data.shards import find_shards, read_shard
from gptbench.errors import GptbenchError
from gptbench.model.config import GPT2_VOCAB

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class DataSpec:
    """What to train on: `synthetic`, a text file, or token shards (a .bin file or a folder of them)."""

    kind: str = "synthetic"  # synthetic | text | shards
    path: str | None = None

    @classmethod
    def parse(cls, value: str | None) -> DataSpec:
        """`synthetic` (or nothing), else a path: a folder or .bin file means shards, any other file text."""
        if value is None or value.strip().lower() in ("", "synthetic", "random"):
            return cls()
        path = Path(value).expanduser()
        if not path.exists():
            raise GptbenchError(f"--data {value}: no such file or folder (give a text file, a shard folder, or 'synthetic')")
        kind = "shards" if path.is_dir() or path.suffix == ".bin" else "text"
        return cls(kind=kind, path=str(path.resolve()))

    def __str__(self) -> str:
        return self.kind if self.path is None else f"{self.kind}:{self.path}"


class BatchSource(Protocol):
    def next_batch(self) -> Batch:
        """The next (inputs, targets) pair on the device, each (micro_batch, seq_len) int64."""
        ...


class SyntheticSource:
    """Uniform random tokens, made once on the device and cycled, so the data path costs nothing."""

    def __init__(self, batch: int, seq: int, device: torch.device, seed: int, pool: int = 4, vocab: int = GPT2_VOCAB) -> None:
        gen = torch.Generator(device="cpu").manual_seed(seed)
        tokens = torch.randint(0, min(vocab, GPT2_VOCAB), (pool, batch, seq + 1), generator=gen)
        self._pool = [(t[:, :-1].to(device), t[:, 1:].to(device)) for t in tokens]
        self._i = 0

    def next_batch(self) -> Batch:
        self._i = (self._i + 1) % len(self._pool)
        return self._pool[self._i]


class WindowSource:
    """Random windows of seq_len + 1 tokens from one or more token arrays (a text, or memmapped shards)."""

    def __init__(self, arrays: list[np.ndarray], batch: int, seq: int, device: torch.device, seed: int) -> None:
        self._arrays = [a for a in arrays if len(a) > seq + 1]
        if not self._arrays:
            longest = max((len(a) for a in arrays), default=0)
            raise GptbenchError(f"the data holds {longest} tokens in one piece, too few for --seq {seq}; lower --seq")
        sizes = np.array([len(a) - seq - 1 for a in self._arrays], dtype=np.float64)
        self._weights = sizes / sizes.sum()
        self._batch, self._seq, self._device = batch, seq, device
        self._rng = np.random.default_rng(seed)
        self._pin = device.type == "cuda"

    def next_batch(self) -> Batch:
        picks = self._rng.choice(len(self._arrays), size=self._batch, p=self._weights)
        rows = []
        for a in picks:
            arr = self._arrays[a]
            start = int(self._rng.integers(0, len(arr) - self._seq - 1))
            rows.append(np.asarray(arr[start : start + self._seq + 1], dtype=np.int64))
        chunk = torch.from_numpy(np.stack(rows))
        if self._pin:
            chunk = chunk.pin_memory()
        chunk = chunk.to(self._device, non_blocking=True)
        return chunk[:, :-1], chunk[:, 1:]


def read_text_tokens(path: str | Path) -> np.ndarray:
    """A text file's GPT-2 tokens (special-token text is encoded as ordinary text)."""
    from gptbench.model.tokenizer import gpt2_encoding

    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise GptbenchError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except OSError as e:
        raise GptbenchError(f"{path}: cannot read ({e.strerror})") from e
    return np.array(gpt2_encoding().encode_ordinary(text), dtype=np.uint16)


def make_source(
    spec: DataSpec, batch: int, seq: int, device: torch.device, seed: int = 1337, vocab: int = GPT2_VOCAB
) -> BatchSource:
    """The batch source for `spec`, yielding (batch, seq) inputs and targets on `device`; synthetic tokens stay below
    `vocab` (a --model-factory model may have fewer than GPT-2's)."""
    if spec.kind == "synthetic":
        return SyntheticSource(batch, seq, device, seed, vocab=vocab)
    assert spec.path is not None
    if spec.kind == "text":
        arrays = [read_text_tokens(spec.path)]
    else:
        arrays = [read_shard(p) for p in find_shards(spec.path)]
    return WindowSource(arrays, batch, seq, device, seed)
