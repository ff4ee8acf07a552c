"""Files that appear whole or not at all: write a temporary file beside the target, then rename it."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def temp_beside(directory: Path, prefix: str) -> tuple[int, Path]:
    """A new temporary file in `directory` (so the rename stays on one filesystem), with the permissions a
    plain open() would give: mkstemp's 0600 would hide the data from other users of a shared folder."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    return fd, Path(tmp)


def write_bytes_atomic(path: Path, chunks: list[bytes]) -> Path:
    """Write `chunks` to `path` via a temporary file and an atomic rename (replacing any file there)."""
    fd, tmp = temp_beside(path.parent, f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def write_temp_text(directory: Path, text: str) -> Path:
    """`text` in a new, synced temporary file in `directory`, ready to be renamed or linked into place."""
    fd, tmp = temp_beside(directory, ".gptbench-")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    return tmp


def link_new(tmp: Path, path: Path) -> None:
    """Give `tmp`'s content the name `path` only if no file has it, even one that appeared a moment ago:
    link(2) never replaces. Raises FileExistsError when the name is taken."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # a filesystem without hard links: claim the name exclusively, then move the content in
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        os.replace(tmp, path)
