"""Reports from files, folders and globs into one pandas DataFrame: a row per run; unreadable files become warnings.

Every column comes from one entry of COLUMNS, so a new measurement (watts, J/token) is one line there and then
appears in `compare`'s table, its CSV, Markdown and HTML exports, and its --json. pandas is imported here, and this
module only when `compare` runs, so other commands never pay for it.
"""

from __future__ import annotations

import glob
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from gptbench.errors import GptbenchError
from gptbench.hardware.specs import match_device
from gptbench.reports.schema import Report, Run, RunConfig, RunResult
from gptbench.reports.store import find_reports, load_report
from gptbench.reports.text import fmt_gb, fmt_hours

# One run as plain values (None where missing), keyed by Column.key. Any: each column has its own type (text, a
# count, a rate, a flag), and rows come back from pandas as such.
Row = Mapping[str, Any]


@dataclass(frozen=True)
class RunSource:
    """What a column reads a value from: one run of one report file."""

    path: Path
    report: Report
    run: Run
    index: int  # the run's position in the report (sweeps and ablations hold many)

    @property
    def config(self) -> RunConfig:
        return self.run.config

    @property
    def result(self) -> RunResult:
        return self.run.result


@dataclass(frozen=True)
class Column:
    """One column of the comparison: where its value comes from and, if it is in the table, how it reads."""

    key: str  # the DataFrame / CSV / JSON name, unit in the name
    get: Callable[[RunSource], Any] | None  # the column's own type (see Row); None: derived by views.compare
    header: str | None = None  # the table / Markdown / HTML header; None: in CSV and JSON only
    show: Callable[[Row], str] | None = None  # the cell text; default: the value, or n/a
    higher_is_better: bool | None = None  # --sort direction: descending when True; None: ascending

    def cell(self, row: Row) -> str:
        """The text of this column's cell for `row`."""
        if self.show is not None:
            return self.show(row)
        value = row.get(self.key)
        return "n/a" if value is None else str(value)


def _ok(row: Row) -> bool:
    return row.get("status") == "ok"


def _number(key: str, fmt: Callable[[float], str]) -> Callable[[Row], str]:
    """The cell of a numeric column: `fmt(value)`, n/a when missing, a dash for a failed run (it has no value)."""

    def show(row: Row) -> str:
        if not _ok(row):
            return "—"
        return "n/a" if row.get(key) is None else fmt(row[key])

    return show


def _machine(row: Row) -> str:
    names = [str(n) for n in (row.get("label"), row.get("run_name")) if n and n != row.get("hostname")]
    return (row.get("hostname") or "?") + (f" ({', '.join(names)})" if names else "")


def _accelerator(row: Row) -> str:
    name = row.get("accelerator") or "?"
    if row.get("accelerator_kind") == "cpu":
        return f"{name} (CPU)"
    return f"{row['accelerator_count']}× {name}" if (row.get("accelerator_count") or 0) > 1 else name


def _accelerator_name(report: Report) -> str | None:
    accel = report.machine.accelerator
    return accel.name or (report.machine.cpu.model if accel.kind == "cpu" else None) or accel.kind


def _gpu_row(report: Report) -> str | None:
    """The spec-table name of the GPU (`a100-sxm4-80gb`), which keys the price catalog; None for CPUs and unknowns."""
    accel = report.machine.accelerator
    spec = match_device(accel.name) if accel.kind == "cuda" and accel.name else None
    return spec.name if spec else None


def _peak_memory_gb(run: Run) -> float | None:
    m = run.result.memory
    return m.peak_allocated_gb if m.peak_allocated_gb is not None else m.host_peak_rss_gb


def _shape(row: Row) -> str:
    return f"{row['seq_len']}×{row['micro_batch']}×{row['grad_accum']}×{row['world_size']}"


def _precision(row: Row) -> str:
    dtype = row["dtype"] + ("+tf32" if row.get("tf32") and row["dtype"] == "fp32" else "") + ("+fp8" if row.get("fp8") else "")
    mode = f"({row['compile_mode']})" if row.get("compile") and row.get("compile_mode", "default") != "default" else ""
    loss = f" {row['loss']} loss" if row.get("loss", "standard") != "standard" else ""
    return f"{dtype} {'compiled' + mode if row.get('compile') else 'eager'} {row['attention']}{loss}"


def _host_runtime(row: Row) -> str:
    """`tcmalloc · 2 threads` (host malloc and intra-op threads); n/a for reports that predate both."""
    allocator = row.get("allocator") or "n/a"
    threads = row.get("threads")
    return allocator if threads is None else f"{allocator} · {threads:.0f} thr"


def _tokens_per_sec(row: Row) -> str:
    if not (_ok(row) and row.get("tokens_per_sec")):
        return str(row.get("status")).upper()
    return f"{row['tokens_per_sec']:,.0f}" + (" (busy)" if row.get("busy") is True else "")  # a shared device: see notes


def _contention(run: Run) -> tuple[bool | None, str | None]:
    """(busy, what else used the device) for a run; (None, None) for reports that predate the reading."""
    c = run.result.contention
    return (None, None) if c is None else (c.busy, "; ".join(c.warnings) or None)


def _memory(row: Row) -> str:
    value = row.get("peak_memory_gb")
    return fmt_gb(value) + (" host RSS" if value is not None and row.get("peak_memory_kind") == "host RSS" else "")


def _telemetry(run: Run, name: str) -> float | bool | None:
    """A figure from the run's telemetry section; None where the report has none (older reports, failed runs)."""
    return None if run.result.telemetry is None else getattr(run.result.telemetry, name)


def _watts(value: float) -> str:
    return f"{value:,.0f}"


def _joules(value: float) -> str:
    return f"{value:.3g}"


COLUMNS: tuple[Column, ...] = (
    Column("hostname", lambda s: s.report.machine.hostname, "machine", _machine),
    Column("accelerator", lambda s: _accelerator_name(s.report), "accelerator", _accelerator),
    Column("model", lambda s: s.config.model.preset, "model", lambda r: f"{r['model']} ({r['n_params'] / 1e6:,.1f}M)"),
    Column("seq_len", lambda s: s.config.seq_len, "seq×batch×accum×ranks", _shape),
    Column("dtype", lambda s: s.config.dtype, "precision", _precision),
    Column("allocator", lambda s: s.config.allocator or s.report.machine.allocator, "allocator", _host_runtime),
    Column("tokens_per_sec", lambda s: s.result.tokens_per_sec, "tokens/s", _tokens_per_sec, True),
    Column("relative_speed", None, "vs baseline", _number("relative_speed", lambda v: f"{v:,.2f}×"), True),
    Column("mfu", lambda s: s.result.mfu, "MFU", _number("mfu", lambda v: f"{v:.1%}"), True),
    Column("peak_memory_gb", lambda s: _peak_memory_gb(s.run), "peak memory", _memory, False),
    Column("power_avg_w", lambda s: _telemetry(s.run, "power_avg_w"), "W", _number("power_avg_w", _watts), False),
    Column(
        "joules_per_token",
        lambda s: _telemetry(s.run, "joules_per_token"),
        "J/token",
        _number("joules_per_token", _joules),
        False,
    ),
    Column("throttled", lambda s: _telemetry(s.run, "throttled")),
    Column("usd_per_billion_tokens", None, "$ / 1B tokens", _number("usd_per_billion_tokens", lambda v: f"${v:,.2f}"), False),
    Column("fineweb_epoch_hours", None, "FineWeb-10B epoch", _number("fineweb_epoch_hours", fmt_hours), False),
    Column("busy", lambda s: _contention(s.run)[0]),
    Column("contention", lambda s: _contention(s.run)[1]),
    Column("status", lambda s: s.result.status),
    Column("error", lambda s: s.result.error),
    Column("file", lambda s: str(s.path)),
    Column("run", lambda s: s.index),
    Column("run_name", lambda s: getattr(s.run, "name", None)),
    Column("label", lambda s: s.report.label),
    Column("created", lambda s: s.report.created or None),
    Column("accelerator_kind", lambda s: s.report.machine.accelerator.kind),
    Column("accelerator_count", lambda s: s.report.machine.accelerator.count),
    Column("gpu", lambda s: _gpu_row(s.report)),
    Column("n_layer", lambda s: s.config.model.n_layer),
    Column("n_head", lambda s: s.config.model.n_head),
    Column("n_embd", lambda s: s.config.model.n_embd),
    Column("vocab_size", lambda s: s.config.model.vocab_size),
    Column("n_params", lambda s: s.config.model.n_params),
    Column("model_source", lambda s: s.config.model.source.describe() if s.config.model.source else None),
    Column("micro_batch", lambda s: s.config.micro_batch),
    Column("grad_accum", lambda s: s.config.grad_accum),
    Column("world_size", lambda s: s.config.world_size),
    Column("tokens_per_step", lambda s: s.config.tokens_per_step),
    Column("compile", lambda s: s.config.compile),
    Column("attention", lambda s: s.config.attention),
    Column("tf32", lambda s: s.config.tf32),
    Column("adamw", lambda s: s.config.adamw_impl),
    Column("loss", lambda s: s.config.loss),
    Column("compile_mode", lambda s: s.config.compile_mode),
    Column("fp8", lambda s: s.config.fp8),
    Column("threads", lambda s: s.config.threads),
    Column("data", lambda s: s.config.data),
    Column("tokens_per_sec_p10", lambda s: s.result.tokens_per_sec_p10),
    Column("tokens_per_sec_p90", lambda s: s.result.tokens_per_sec_p90),
    Column("step_time_s", lambda s: s.result.step_time_s),
    Column("warmup_s", lambda s: s.result.warmup_s),
    Column("flops_per_token", lambda s: s.result.flops_per_token),
    Column("flops_formula", lambda s: s.result.flops_formula),
    Column("achieved_tflops", lambda s: s.result.achieved_tflops),
    Column("peak_tflops", lambda s: s.result.peak_tflops),
    Column("peak_memory_kind", lambda s: "host RSS" if s.run.result.memory.peak_allocated_gb is None else "device allocated"),
    Column("loss_all_finite", lambda s: s.result.loss.all_finite),
    Column("price_per_gpu_hour_usd", None),
    Column("price_source", None),
    Column("fineweb_epoch_usd", None),
    Column("group", None),
)


def table_columns() -> tuple[Column, ...]:
    """The columns of the table, Markdown and HTML, in order (read from COLUMNS on each call)."""
    return tuple(c for c in COLUMNS if c.header)


def find_column(key: str) -> Column | None:
    """The column named `key`, if there is one."""
    return next((c for c in COLUMNS if c.key == key), None)


@dataclass(frozen=True)
class LoadedRuns:
    """Every run of every readable report, and one warning per input that was skipped."""

    frame: pd.DataFrame  # one row per run, a column per entry of COLUMNS (derived ones still empty)
    warnings: tuple[str, ...]
    files: int  # reports read


def expand_inputs(inputs: Sequence[str | Path]) -> tuple[list[Path], list[str]]:
    """Files, folders (their *.json) and globs → distinct paths in order, and a warning for each input that named none."""
    paths: list[Path] = []
    warnings: list[str] = []
    for item in inputs:
        text = str(item)
        if Path(text).exists():
            matches = [Path(text)]
        elif any(ch in text for ch in "*?["):  # a glob the shell did not expand (quoted, or on Windows)
            matches = [Path(m) for m in sorted(glob.glob(text, recursive=True))]
            if not matches:
                warnings.append(f"{text}: no file matches this pattern")
        else:
            warnings.append(f"{text}: no such file or folder")
            continue
        for path in matches:
            found = find_reports(path) if path.is_dir() else [path]
            if path.is_dir() and not found:
                warnings.append(f"{path}: no .json reports in this folder")
            paths.extend(found)
    distinct = list({p.resolve(): p for p in reversed(paths)}.values())[::-1]  # first mention wins
    return distinct, warnings


def run_rows(path: Path, report: Report) -> list[dict[str, Any]]:
    """The rows of one report: one per run, every Column with a getter filled in, derived ones None."""
    sources = [RunSource(path, report, run, i) for i, run in enumerate(report.runs)]
    return [{c.key: (c.get(s) if c.get else None) for c in COLUMNS} for s in sources]


def load_runs(inputs: Sequence[str | Path]) -> LoadedRuns:
    """Read every report named by `inputs`; a bad file (not JSON, truncated, unknown schema) is a warning, not an error."""
    paths, warnings = expand_inputs(inputs)
    rows: list[dict[str, Any]] = []
    files = 0
    for path in paths:
        try:
            report = load_report(path)
        except GptbenchError as e:
            warnings.append(f"{e}; skipped")
            continue
        if not report.runs:
            warnings.append(f"{path}: a gptbench report without training runs; skipped")
            continue
        files += 1
        rows.extend(run_rows(path, report))
    return LoadedRuns(pd.DataFrame.from_records(rows, columns=[c.key for c in COLUMNS]), tuple(warnings), files)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """The rows as plain Python values, None where pandas holds NaN (for cells, JSON and price rules)."""
    return frame.astype(object).where(frame.notna(), None).to_dict("records")
