"""llm.c's token-shard format: a header of 256 int32 (magic 20240520, version 1, token count), then uint16 tokens."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gptbench.atomic import write_bytes_atomic
from gptbench.errors import GptbenchError

MAGIC = 20240520
VERSION = 1
HEADER_INTS = 256
HEADER_BYTES = HEADER_INTS * 4
TOKEN_DTYPE = np.uint16  # GPT-2's 50,257 ids fit in 16 bits, halving the file against int32


def write_shard(path: str | Path, tokens: np.ndarray) -> Path:
    """Write `tokens` as one shard; a temporary name is renamed on completion, so no half shard looks whole."""
    path = Path(path)
    tokens = np.asarray(tokens)
    if tokens.size and (tokens.min() < 0 or tokens.max() > np.iinfo(TOKEN_DTYPE).max):
        raise GptbenchError(f"{path}: token ids must fit in uint16 (0..65535)")
    header = np.zeros(HEADER_INTS, dtype=np.int32)
    header[:3] = (MAGIC, VERSION, tokens.size)
    write_bytes_atomic(path, [header.tobytes(), tokens.astype(TOKEN_DTYPE, copy=False).tobytes()])
    return path


def read_shard(path: str | Path) -> np.memmap:
    """The tokens of one shard as a read-only memmap, after checking its header against its size."""
    path = Path(path)
    try:
        size = path.stat().st_size
        header = np.fromfile(path, dtype=np.int32, count=HEADER_INTS)
    except OSError as e:
        raise GptbenchError(f"{path}: cannot read shard ({e.strerror})") from e
    if header.size < HEADER_INTS:
        raise GptbenchError(f"{path}: not a token shard: {size} bytes is shorter than the {HEADER_BYTES}-byte header")
    if header[0] != MAGIC:
        raise GptbenchError(f"{path}: not a token shard: magic number {header[0]}, expected {MAGIC}")
    if header[1] != VERSION:
        raise GptbenchError(f"{path}: unsupported shard version {header[1]}, expected {VERSION}")
    count = int(header[2])
    expected = HEADER_BYTES + count * np.dtype(TOKEN_DTYPE).itemsize
    if size != expected:
        raise GptbenchError(
            f"{path}: shard is truncated or corrupt: header says {count} tokens ({expected} bytes), file has {size} bytes"
        )
    if count == 0:
        return np.zeros(0, dtype=TOKEN_DTYPE).view(np.memmap)
    return np.memmap(path, dtype=TOKEN_DTYPE, mode="r", offset=HEADER_BYTES, shape=(count,))


def find_shards(path: str | Path, split: str = "train") -> list[Path]:
    """The shard files at `path`: the file itself, or a folder's `*_{split}_*.bin` (all `*.bin` if none are so named)."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise GptbenchError(f"{path}: no such file or folder")
    shards = sorted(path.glob(f"*_{split}_*.bin")) or sorted(path.glob("*.bin"))
    if not shards:
        raise GptbenchError(f"{path}: no token shards (*.bin) in this folder; write some with `gptbench prepare`")
    return shards
