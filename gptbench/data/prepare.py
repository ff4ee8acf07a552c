"""`gptbench prepare`: tokenize parquet, jsonl or text with GPT-2's BPE into llm.c-format token shards.

Documents stream from the inputs in bounded batches, are tokenized in worker processes (ordered, so the output
does not depend on the worker count), and fill shards of a fixed size, documents flowing across shard
boundaries: `<name>_val_000000.bin` first, then `<name>_train_000001.bin`, ... Each document is preceded by
`<|endoftext|>` (50256), as llm.c's FineWeb shards are.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import re
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import numpy as np

from gptbench.data.corpus import read_documents, split_long
from gptbench.data.shards import write_shard
from gptbench.errors import GptbenchError, WriteFailed, stop_signal

Piece = tuple[str, bool]  # (text, starts a new document): long documents are cut into several pieces
SUFFIX_SCALE = {"": 1, "K": 10**3, "M": 10**6, "B": 10**9, "G": 10**9, "T": 10**12}
MAX_SHARD_TOKENS = 2**31 - 1  # the header stores the count as int32


def parse_count(text: str, option: str) -> int:
    """A positive whole count written as `100000000`, `1e8`, `100M` or `2.5B` (K, M, B/G, T are powers of 1000)."""
    match = re.fullmatch(r"\s*([0-9.]+(?:[eE][+-]?[0-9]+)?)\s*([kKmMbBgGtT]?)\s*", text)
    try:
        value = Decimal(match.group(1)) * SUFFIX_SCALE[match.group(2).upper()] if match else None
    except InvalidOperation:
        value = None
    if value is None or value <= 0 or value != value.to_integral_value():
        raise GptbenchError(f"{option} {text!r}: give a positive whole number such as 100000000, 1e8, 100M or 2.5B")
    return int(value)


def default_workers() -> int:
    """One worker per core this process may use, less one for reading and writing; at least one."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores - 1)


@dataclass(frozen=True)
class PrepareConfig:
    """What to tokenize, and how to write it."""

    inputs: tuple[Path, ...]  # files, in order; see resolve_inputs
    out_dir: Path
    name: str = "corpus"  # shards are <name>_val_000000.bin, <name>_train_000001.bin, ...
    column: str = "text"  # the parquet column or jsonl field that holds each document
    split_on: str | None = None  # text files: the separator between documents (None: one document per file)
    shard_tokens: int = 100_000_000  # llm.c's FineWeb shards hold 1e8 tokens (200 MB)
    workers: int = field(default_factory=default_workers)  # 1: tokenize in this process
    force: bool = False  # replace the folder's existing <name> shards
    batch_chars: int = 1 << 20  # text per worker task; long documents are cut into pieces of at most this

    def __post_init__(self) -> None:
        if not self.inputs:
            raise GptbenchError("no input files given")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", self.name):
            raise GptbenchError(f"--name {self.name!r}: use letters, digits, '.', '_' or '-' (it starts each shard's file name)")
        if not 0 < self.shard_tokens <= MAX_SHARD_TOKENS:
            raise GptbenchError(f"--shard-tokens {self.shard_tokens}: must be between 1 and {MAX_SHARD_TOKENS:,} (int32 header)")
        if self.workers < 1:
            raise GptbenchError(f"--workers {self.workers}: must be at least 1")
        if self.split_on == "":
            raise GptbenchError("--split-on: the separator cannot be empty")
        if self.batch_chars < 1:
            raise GptbenchError("batch_chars must be positive")


def _rate(tokens: int, seconds: float) -> float:
    return tokens / seconds if seconds > 0 else 0.0


@dataclass(frozen=True)
class PrepareProgress:
    """Where a prepare stands, after each tokenized batch."""

    documents: int
    tokens: int
    shards: int  # complete shards written
    bytes_done: int  # of the inputs, as stored (compressed for .gz and parquet)
    bytes_total: int
    elapsed_s: float

    @property
    def tokens_per_sec(self) -> float:
        return _rate(self.tokens, self.elapsed_s)


@dataclass(frozen=True)
class PrepareResult:
    """The shards written and what went into them."""

    shards: tuple[Path, ...]
    documents: int
    tokens: int
    elapsed_s: float
    workers: int  # worker processes used (1: tokenized in this process)

    @property
    def tokens_per_sec(self) -> float:
        return _rate(self.tokens, self.elapsed_s)

    def to_dict(self) -> dict[str, Any]:
        """`prepare --json`: the shards as paths, the counts, and the rate."""
        return {
            "schema": "gptbench.prepare/1",
            "shards": [str(p) for p in self.shards],
            "documents": self.documents,
            "tokens": self.tokens,
            "elapsed_s": self.elapsed_s,
            "tokens_per_sec": self.tokens_per_sec,
            "workers": self.workers,
        }


class PrepareIncomplete(WriteFailed):
    """A shard could not be written (disk full, folder gone): `result` holds the complete shards before it, their
    tokens, and the documents tokenized so far (the last of them were in the shard that failed)."""

    def __init__(self, failure: WriteFailed, result: PrepareResult) -> None:
        super().__init__(failure.path, failure.reason)
        self.result = result


class PrepareInterrupted(KeyboardInterrupt):
    """Ctrl-C during a prepare; `shards` are the complete ones (the shard in progress was never named as a shard)."""

    def __init__(self, shards: tuple[Path, ...], signum: int = 2) -> None:
        super().__init__(f"{len(shards)} complete shards")
        self.shards, self.signum = shards, signum  # the stop signal: SIGINT (Ctrl-C) or SIGTERM


def _documents(path: Path, config: PrepareConfig) -> Generator[tuple[str, bool, int], None, None]:
    return read_documents(path, config.column, config.split_on, config.batch_chars)


def check_input(path: Path, config: PrepareConfig) -> None:
    """Fail now, before any shard is written, if `path` cannot be read or lacks the text column."""
    with closing(_documents(path, config)) as docs:
        next(docs, None)


def _batches(files: Sequence[tuple[Path, int]], config: PrepareConfig) -> Iterator[tuple[list[Piece], int]]:
    """Pieces of about `batch_chars` characters in all, with the input bytes read when each batch was complete."""
    batch: list[Piece] = []
    chars = done = 0
    for path, size in files:
        for text, new_doc, pos in _documents(path, config):
            for k, piece in enumerate(split_long(text, config.batch_chars)):
                batch.append((piece, new_doc and k == 0))
                chars += len(piece)
                if chars >= config.batch_chars:
                    yield batch, done + pos
                    batch, chars = [], 0
        done += size
    if batch:
        yield batch, done


def tokenize_pieces(pieces: Sequence[Piece]) -> np.ndarray:
    """GPT-2 ids of the pieces, `<|endoftext|>` before each one that starts a document (runs in a worker)."""
    from gptbench.model.tokenizer import EOT_TOKEN, gpt2_encoding

    enc = gpt2_encoding()  # built once per process from the bundled ranks file; nothing is downloaded
    ids: list[int] = []
    for text, new_doc in pieces:
        if new_doc:
            ids.append(EOT_TOKEN)
        ids.extend(enc.encode_ordinary(text))
    return np.array(ids, dtype=np.uint16)


def _ignore_sigint() -> bool:
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return True


def start_pool(workers: int) -> ProcessPoolExecutor:
    """`workers` spawned processes, all started now, that ignore Ctrl-C: it reaches the whole process group, and only
    the main process decides what it means. They start with SIGINT ignored (kept across exec), so an early Ctrl-C
    cannot kill one mid-import with a traceback; the initializer makes sure of it."""
    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if in_main else None
    try:
        # spawn, not fork: a forked copy of a process with threads (pyarrow's, rich's) can deadlock.
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_ignore_sigint)
        for _ in range(workers):
            pool.submit(_ignore_sigint)  # the pool starts one process per task waiting, here and now
    finally:
        if in_main:
            signal.signal(signal.SIGINT, previous)
    return pool


def _tokenized(batches: Iterator[tuple[list[Piece], int]], workers: int) -> Generator[tuple[np.ndarray, int, int], None, None]:
    """(ids, documents, bytes read) per batch, in input order; at most 2 batches per worker are in flight."""
    if workers == 1:
        for pieces, pos in batches:
            yield tokenize_pieces(pieces), sum(new for _, new in pieces), pos
        return
    pool = start_pool(workers)
    pending: deque[tuple[Any, int, int]] = deque()
    try:
        for pieces, pos in batches:
            pending.append((pool.submit(tokenize_pieces, pieces), sum(new for _, new in pieces), pos))
            if len(pending) >= 2 * workers:
                future, docs, done = pending.popleft()
                yield future.result(), docs, done
        while pending:
            future, docs, done = pending.popleft()
            yield future.result(), docs, done
    except BrokenProcessPool as e:
        raise GptbenchError("a tokenizer worker process died (out of memory?); try fewer --workers") from e
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


SHARD_NAME = r"{name}_(val|train)_\d{{6}}\.bin"


def existing_shards(out_dir: Path, name: str) -> list[Path]:
    """The folder's shards written under `name` (exactly `<name>_val_NNNNNN.bin` and `<name>_train_NNNNNN.bin`)."""
    if not out_dir.is_dir():
        return []
    pattern = re.compile(SHARD_NAME.format(name=re.escape(name)))
    return sorted(p for p in out_dir.iterdir() if pattern.fullmatch(p.name))


class ShardWriter:
    """Fills shards of `shard_tokens` tokens in order, the first one val, the rest train; each written atomically."""

    def __init__(self, out_dir: Path, name: str, shard_tokens: int) -> None:
        self.out_dir, self.name = out_dir, name
        self.shards: list[Path] = []
        self.shard_tokens: list[int] = []  # tokens of each shard written or being written
        self._buf = np.empty(shard_tokens, dtype=np.uint16)
        self._fill = 0

    def add(self, ids: np.ndarray) -> None:
        """Append tokens, writing each shard as it fills (a document may continue in the next shard)."""
        while len(ids):
            take = min(len(ids), len(self._buf) - self._fill)
            self._buf[self._fill : self._fill + take] = ids[:take]
            self._fill, ids = self._fill + take, ids[take:]
            if self._fill == len(self._buf):
                self._flush()

    def close(self) -> None:
        """Write the last, partly filled shard."""
        if self._fill:
            self._flush()

    def _flush(self) -> None:
        index = len(self.shards)
        split = "val" if index == 0 else "train"
        self.shard_tokens.append(self._fill)
        self.shards.append(write_shard(self.out_dir / f"{self.name}_{split}_{index:06d}.bin", self._buf[: self._fill]))
        self._fill = 0


def _claim_out_dir(config: PrepareConfig) -> bool:
    """Make the output folder (True if it was made now); refuse to mix with earlier shards of the same name unless
    --force, and then remove them first, so a later interrupt cannot leave old and new shards mixed."""
    out = config.out_dir
    if out.exists() and not out.is_dir():
        raise GptbenchError(f"--out {out}: exists and is not a folder")
    old = existing_shards(out, config.name)
    if old and not config.force:
        raise GptbenchError(
            f"--out {out} already holds {len(old)} '{config.name}' shards ({old[0].name}, ...); "
            "pick another --out or --name, or pass --force to replace them"
        )
    made = not out.exists()
    try:
        out.mkdir(parents=True, exist_ok=True)
        for path in old:
            path.unlink()
    except OSError as e:
        raise GptbenchError(f"--out {out}: cannot write there ({e.strerror})") from e
    return made


def prepare(config: PrepareConfig, on_progress: Callable[[PrepareProgress], None] | None = None) -> PrepareResult:
    """Tokenize the inputs into shards in `config.out_dir`; raises PrepareInterrupted on Ctrl-C."""
    for path in config.inputs:
        check_input(path, config)
    files = [(p, p.stat().st_size) for p in config.inputs]
    total = sum(size for _, size in files)
    # No more workers than batches: a small corpus is not worth starting processes for.
    workers = max(1, min(config.workers, math.ceil(total / config.batch_chars)))
    made = _claim_out_dir(config)
    writer = ShardWriter(config.out_dir, config.name, config.shard_tokens)
    start, documents, tokens = time.perf_counter(), 0, 0
    try:
        with closing(_tokenized(_batches(files, config), workers)) as results:
            for ids, docs, done in results:
                writer.add(ids)
                documents, tokens = documents + docs, tokens + len(ids)
                if on_progress:
                    elapsed = time.perf_counter() - start
                    on_progress(PrepareProgress(documents, tokens, len(writer.shards), done, total, elapsed))
        writer.close()
        if not tokens:
            raise GptbenchError("the inputs hold no text (every document was empty)")
    except KeyboardInterrupt as e:
        raise PrepareInterrupted(tuple(writer.shards), stop_signal(e)) from None
    except WriteFailed as e:  # the shards before it are whole; the tokens counted are those they hold
        written = sum(writer.shard_tokens[: len(writer.shards)])
        result = PrepareResult(tuple(writer.shards), documents, written, time.perf_counter() - start, workers)
        raise PrepareIncomplete(e, result) from e
    except GptbenchError as e:
        if not writer.shards:
            if made:
                config.out_dir.rmdir()  # leave no trace of a prepare that wrote nothing
            raise
        raise GptbenchError(f"{e} ({len(writer.shards)} shards were written before this; fix it and rerun with --force)") from e
    return PrepareResult(tuple(writer.shards), documents, tokens, time.perf_counter() - start, workers)
