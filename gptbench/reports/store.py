"""Reports on disk: readable unique names, atomic writes that never overwrite, and validated loading."""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from pathlib import Path

from gptbench.atomic import claim_name, make_folder, replace_with, write_temp_text
from gptbench.errors import GptbenchError, WriteFailed
from gptbench.reports.schema import KNOWN_SCHEMAS, Report


def utc_now() -> str:
    """The current UTC time, ISO-8601 to the second."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def slug(text: str, limit: int = 40) -> str:
    """`NVIDIA H100 80GB HBM3` -> `nvidia-h100-80gb-hbm3`: safe in a file name on every OS."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit] or "x"


def report_name(report: Report) -> str:
    """`20261128-213015_host_nvidia-h200[_label]`: date, host, accelerator, label."""
    created = datetime.fromisoformat(report.created) if report.created else datetime.now(timezone.utc)
    accel = report.machine.accelerator
    parts = [created.strftime("%Y%m%d-%H%M%S"), slug(report.machine.hostname or "host"), slug(accel.name or accel.kind)]
    if report.label:
        parts.append(slug(report.label))
    return "_".join(parts)


def _dump(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, allow_nan=False) + "\n"


class ReportFile:
    """One report file, created under a fresh name and rewritten atomically as runs are added (sweeps). A write that
    fails (disk full, read-only or vanished folder) is kept in `failure` instead of raised, so a series goes on
    measuring; the next update tries again. `path` is None until a version was written."""

    def __init__(self, out_dir: str | Path, report: Report) -> None:
        self.directory = Path(out_dir)
        self.path: Path | None = None
        self.failure: WriteFailed | None = None
        self.update(report)

    def _claim(self, report: Report) -> Path:
        """Write the first version under a name no file has yet."""
        base = report_name(report)
        make_folder(self.directory)
        tmp = write_temp_text(self.directory, _dump(report), self.directory / f"{base}.json")
        names = (self.directory / (f"{base}.json" if n == 1 else f"{base}-{n}.json") for n in range(1, 1000))
        path = claim_name(tmp, names)
        if path is None:
            raise GptbenchError(f"{self.directory}: too many reports named {base}*; pass a --label")
        return path

    def update(self, report: Report) -> None:
        """Write `report` to this file, atomically (readers see old or new, never half); a failed write is kept in
        `failure` (cleared by the next write that succeeds)."""
        try:
            if self.path is None:
                self.path = self._claim(report)
            else:
                replace_with(write_temp_text(self.directory, _dump(report), self.path), self.path)
            self.failure = None
        except WriteFailed as e:
            self.failure = e


def write_report(report: Report, out_dir: str | Path) -> Path:
    """Write `report` into `out_dir` under a new unique name; returns the path, or raises WriteFailed."""
    file = ReportFile(out_dir, report)
    if file.failure is not None or file.path is None:
        raise file.failure or WriteFailed(out_dir, "not written")
    return file.path


def parse_report(data: object, source: str) -> Report:
    """A Report from parsed JSON, or a GptbenchError naming `source` and what is wrong."""
    if not isinstance(data, dict) or "schema" not in data:
        raise GptbenchError(f"{source}: not a gptbench report (no 'schema' field)")
    if data["schema"] not in KNOWN_SCHEMAS:
        raise GptbenchError(
            f"{source}: unknown report schema {data['schema']!r} (this gptbench reads {', '.join(KNOWN_SCHEMAS)}); "
            "upgrade gptbench"
        )
    try:
        return Report.from_dict(data)
    except (TypeError, KeyError, ValueError) as e:
        raise GptbenchError(f"{source}: malformed gptbench report ({e})") from e


def load_report(path: str | Path) -> Report:
    """Read and validate one report file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise GptbenchError(f"{path}: no such report file") from e
    except (OSError, UnicodeDecodeError) as e:
        raise GptbenchError(f"{path}: cannot read ({e})") from e
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise GptbenchError(f"{path}: not valid JSON, truncated or corrupt (line {e.lineno}: {e.msg})") from e
    return parse_report(data, str(path))


def find_reports(path: str | Path) -> list[Path]:
    """The `*.json` files directly in folder `path`, oldest first (by modification time); [] for a missing folder."""
    folder = Path(path)
    if not folder.is_dir():
        return []
    files = [p for p in folder.glob("*.json") if p.is_file() and not p.name.startswith(".")]
    return sorted(files, key=lambda p: (p.stat().st_mtime, p.name))


def scan_reports(path: str | Path) -> tuple[list[Path], list[str]]:
    """The report files in folder `path` this gptbench reads, oldest first, and a warning line for each other `*.json`
    there (truncated, not a report, a future schema) naming it: readers of a folder skip those instead of failing."""
    readable, warnings = [], []
    for file in find_reports(path):
        try:
            load_report(file)
        except GptbenchError as e:
            warnings.append(f"{e}; skipped")
            continue
        readable.append(file)
    return readable, warnings
