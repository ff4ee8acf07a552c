"""Reading a corpus: which files, in which format, and their documents as a stream of text.

Parquet (FineWeb: a `text` column, read in row batches with pyarrow), jsonl (one JSON object per line), and plain
text (one document per file, or documents between a separator), each optionally gzipped except parquet. Nothing
holds a whole file in memory, and long documents can be cut where GPT-2's tokens are unchanged by the cut.
"""

from __future__ import annotations

import codecs
import glob
import gzip
import json
import re
from collections.abc import Generator, Iterator, Sequence
from io import BufferedReader
from pathlib import Path

from gptbench.errors import GptbenchError

INPUT_SUFFIXES = (".parquet", ".jsonl", ".ndjson", ".json", ".txt", ".text", ".md")  # what a folder argument takes
READ_BYTES = 1 << 20  # text and jsonl are read in blocks of this size


def parse_separator(text: str) -> str:
    """`--split-on` as typed: the escapes \\n, \\r, \\t and \\\\ stand for newline, return, tab and a backslash."""
    return re.sub(r"\\([nrt\\])", lambda m: {"n": "\n", "r": "\r", "t": "\t", "\\": "\\"}[m.group(1)], text)


def resolve_inputs(patterns: Sequence[str]) -> tuple[Path, ...]:
    """Files named, matched by a glob (quoted, so the shell left it), or inside a folder (known suffixes), in order."""
    files: dict[Path, None] = {}
    for pattern in patterns:
        path = Path(pattern).expanduser()
        if any(c in pattern for c in "*?["):
            matches = sorted(Path(p) for p in glob.glob(str(path), recursive=True) if Path(p).is_file())
        elif path.is_dir():
            matches = sorted(p for p in path.iterdir() if p.is_file() and input_suffix(p) in INPUT_SUFFIXES)
        elif path.is_file():
            matches = [path]
        else:
            raise GptbenchError(f"{pattern}: no such file or folder")
        if not matches:
            raise GptbenchError(f"{pattern}: no input files match (parquet, jsonl or text)")
        files.update(dict.fromkeys(matches))
    return tuple(files)


def input_suffix(path: Path) -> str:
    """The suffix that names the format, looking past `.gz`."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes.pop()
    return suffixes[-1] if suffixes else ""


def input_format(path: Path) -> str:
    """`parquet`, `jsonl` (also .ndjson and .json: one object per line) or `text` (anything else)."""
    suffix = input_suffix(path)
    if suffix == ".parquet":
        return "parquet"
    return "jsonl" if suffix in (".jsonl", ".ndjson", ".json") else "text"


def safe_cut(text: str, lo: int, hi: int) -> int:
    r"""The last i in [lo, hi] where cutting `text` leaves GPT-2's tokens unchanged, or 0 if there is none.

    GPT-2's pre-tokenizer always starts a new piece at a space followed by a non-space: the patterns that take
    a space take it only as their first character, and a whitespace run before it ends one character early
    (`\s+(?!\S)`), just where it ends at the end of text[:i]. BPE never merges across pieces, so encoding
    text[:i] and text[i:] apart gives exactly the tokens of the whole (tests/test_prepare.py checks this)."""
    i = text.rfind(" ", max(lo, 1), hi + 1)
    while i > 0:
        if i + 1 < len(text) and not text[i + 1].isspace():
            return i
        i = text.rfind(" ", max(lo, 1), i)
    return 0


def split_long(text: str, limit: int) -> list[str]:
    """`text` in pieces of at most `limit` characters where a safe cut exists, so one long document spreads over workers."""
    pieces, start = [], 0
    while len(text) - start > limit:
        cut = safe_cut(text, start + 1, start + limit)
        if not cut:
            break
        pieces.append(text[start:cut])
        start = cut
    pieces.append(text[start:] if start else text)
    return pieces


def _open_binary(path: Path) -> tuple[gzip.GzipFile | BufferedReader, BufferedReader]:
    """(the stream to read, the raw file whose position measures progress)."""
    raw = open(path, "rb")  # noqa: SIM115  (closed by the caller, with the stream)
    return (gzip.GzipFile(fileobj=raw) if path.suffix.lower() == ".gz" else raw), raw


def _text_pieces(path: Path, split_on: str | None, limit: int) -> Iterator[tuple[str, bool, int]]:
    """A text file as one document, or documents between `split_on`; read in blocks, long documents cut safely."""
    stream, raw = _open_binary(path)
    decoder = codecs.getincrementaldecoder("utf-8")()
    buf, new_doc, keep = "", True, len(split_on or "")
    with raw, stream:
        while True:
            block = stream.read(READ_BYTES)
            buf += decoder.decode(block, final=not block)
            if split_on:
                *docs, buf = buf.split(split_on)
                for doc in docs:
                    if doc:
                        yield doc, new_doc, raw.tell()
                    new_doc = True
            # Cut no later than len(split_on) before the end: a separator may be arriving in the next block.
            while len(buf) > limit and (cut := safe_cut(buf, 1, min(limit, len(buf) - keep))):
                yield buf[:cut], new_doc, raw.tell()
                buf, new_doc = buf[cut:], False
            if not block:
                break
        if buf:
            yield buf, new_doc, raw.tell()


def _jsonl_docs(path: Path, column: str) -> Iterator[tuple[str, bool, int]]:
    """The `column` field of each line's JSON object; blank lines and empty or null texts are skipped."""
    stream, raw = _open_binary(path)
    with raw, stream:
        for lineno, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except ValueError as e:
                raise GptbenchError(f"{path}:{lineno}: not a JSON line ({e})") from e
            text = record.get(column) if isinstance(record, dict) else None
            if text is None and not (isinstance(record, dict) and column in record):
                raise GptbenchError(f"{path}:{lineno}: no field {column!r} in this JSON line; name the text field with --column")
            if text is not None and not isinstance(text, str):
                raise GptbenchError(f"{path}:{lineno}: field {column!r} holds {type(text).__name__}, not text")
            if text:
                yield text, True, raw.tell()


def _parquet_docs(path: Path, column: str) -> Iterator[tuple[str, bool, int]]:
    """The `column` of each row, streamed in row batches (a FineWeb file never sits in memory whole)."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:
        raise GptbenchError(f"{path}: reading parquet needs pyarrow: pip install pyarrow") from e
    try:
        pfile = pq.ParquetFile(path)
        schema = pfile.schema_arrow
        if column not in schema.names:
            raise GptbenchError(f"{path}: no column {column!r} (it has: {', '.join(schema.names)}); choose one with --column")
        kind = schema.field(column).type
        if str(kind) not in ("string", "large_string", "string_view"):
            raise GptbenchError(f"{path}: column {column!r} holds {kind}, not text; choose another with --column")
        size, rows, total = path.stat().st_size, 0, max(pfile.metadata.num_rows, 1)
        for batch in pfile.iter_batches(batch_size=1024, columns=[column]):
            texts = batch.column(0).to_pylist()
            rows += len(texts)
            for text in texts:
                if text:
                    yield text, True, size * rows // total
    except pa.ArrowException as e:
        raise GptbenchError(f"{path}: cannot read as parquet ({e})") from e


def read_documents(path: Path, column: str, split_on: str | None, limit: int) -> Generator[tuple[str, bool, int], None, None]:
    """(text, starts a document, bytes of `path` read so far) for each document in `path`, or each piece of a
    document where a text file's would otherwise sit in memory whole (pieces of at most about `limit` characters)."""
    fmt = input_format(path)
    try:
        if fmt == "parquet":
            yield from _parquet_docs(path, column)
        elif fmt == "jsonl":
            yield from _jsonl_docs(path, column)
        else:
            yield from _text_pieces(path, split_on, limit)
    except UnicodeDecodeError as e:
        raise GptbenchError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    except (OSError, EOFError) as e:
        raise GptbenchError(f"{path}: cannot read ({getattr(e, 'strerror', None) or e})") from e
