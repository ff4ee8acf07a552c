"""Files that appear whole or not at all: write a temporary file beside the target, then rename it. Every write
goes through here, so a full disk, a read-only or vanished folder or a refused permission is one `WriteFailed`
naming the file and the OS's reason, with no temporary file left behind."""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from gptbench.errors import WriteFailed


def reason(error: OSError) -> str:
    """The OS's words for a failed write: `No space left on device (ENOSPC)`."""
    name = errno.errorcode.get(error.errno or 0)
    text = error.strerror or (os.strerror(error.errno) if error.errno else str(error)) or type(error).__name__
    return f"{text} ({name})" if name else text


@contextmanager
def writing(path: Path, tmp: Path | None = None) -> Iterator[None]:
    """An OSError inside becomes WriteFailed(path); `tmp` is removed on any failure. FileExistsError passes through
    untouched: claiming a name that is taken is how callers find a free one."""
    try:
        yield
    except BaseException as e:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
        if isinstance(e, OSError) and not isinstance(e, FileExistsError):
            raise WriteFailed(path, reason(e)) from e
        raise


def make_folder(directory: Path) -> None:
    """Create `directory` (and its parents) if missing."""
    with writing(directory):
        directory.mkdir(parents=True, exist_ok=True)


def temp_beside(directory: Path, prefix: str) -> tuple[int, Path]:
    """A new temporary file in `directory` (so the rename stays on one filesystem), with the permissions a
    plain open() would give: mkstemp's 0600 would hide the data from other users of a shared folder."""
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=directory)
    umask = os.umask(0)
    os.umask(umask)
    os.fchmod(fd, 0o666 & ~umask)
    return fd, Path(tmp)


def _write_temp(directory: Path, chunks: Iterable[bytes], target: Path, prefix: str) -> Path:
    """`chunks` in a new, synced temporary file in `directory`; on failure the file is gone and WriteFailed names `target`."""
    with writing(target):
        fd, tmp = temp_beside(directory, prefix)
    with writing(target, tmp):
        with os.fdopen(fd, "wb") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
    return tmp


def write_temp_text(directory: Path, text: str, target: Path) -> Path:
    """`text` in a new, synced temporary file in `directory`, ready to be renamed or linked to `target`."""
    return _write_temp(directory, [text.encode("utf-8")], target, ".gptbench-")


def replace_with(tmp: Path, path: Path) -> None:
    """Rename `tmp` over `path` (replacing any file there); on failure `tmp` is removed."""
    with writing(path, tmp):
        os.replace(tmp, path)


def write_bytes_atomic(path: Path, chunks: list[bytes]) -> Path:
    """Write `chunks` to `path` via a temporary file and an atomic rename (replacing any file there)."""
    replace_with(_write_temp(path.parent, chunks, path, f".{path.name}."), path)
    return path


def link_new(tmp: Path, path: Path) -> None:
    """Give `tmp`'s content the name `path` only if no file has it, even one that appeared a moment ago:
    link(2) never replaces. Raises FileExistsError when the name is taken."""
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise
    except OSError:  # a filesystem without hard links: claim the name exclusively, then move the content in
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        try:
            os.replace(tmp, path)
        except OSError:
            path.unlink(missing_ok=True)  # the empty file that claimed the name
            raise


def claim_name(tmp: Path, candidates: Iterable[Path]) -> Path | None:
    """Give `tmp`'s content the first of `candidates` that no file has (None when all are taken); `tmp` is removed
    in every case."""
    try:
        for path in candidates:
            try:
                with writing(path):
                    link_new(tmp, path)
                return path
            except FileExistsError:
                continue
        return None
    finally:
        tmp.unlink(missing_ok=True)
