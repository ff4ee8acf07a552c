"""The prediction ledger (benchmarks/predictions.csv): each prediction registered, with its band, the commit whose model
made it and the date, before the GPU or configuration is first measured; when a report lands, its error is
ln(predicted / measured) against that registered entry, never against a refit model. Torch-free, never runs git:
the checks that need a repository's history take a function that reads a file at a commit.

A row's `configuration` is `key=value` tokens: `model` (the preset) and RunConfig's field names. A run matches a row
when every listed field equals the run's, and every field the row leaves out that has a default is at its default
(so a switch added later, such as a new loss, never matches a row registered without it).
"""

from __future__ import annotations

import csv
import io
import math
import re
import statistics
from collections.abc import Callable, Sequence
from dataclasses import MISSING, dataclass, fields, replace
from datetime import datetime
from pathlib import Path

from gptbench.atomic import write_bytes_atomic
from gptbench.errors import GptbenchError
from gptbench.hardware.specs import match_device
from gptbench.reports.schema import Report, Run, RunConfig

COLUMNS = (
    "id", "registered_utc", "commit", "gpu", "configuration", "metric", "predicted", "band_low", "band_high", "basis",
    "measured", "measured_utc", "measured_report", "ln_error", "note",
)  # fmt: skip
PREDICTION_COLUMNS = COLUMNS[:10]  # what registration writes and nothing may change afterwards
METRICS: dict[str, Callable[[Run], float | None]] = {
    "tokens_per_sec": lambda run: run.result.tokens_per_sec,
    "peak_reserved_gb": lambda run: run.result.memory.peak_reserved_gb,
    "device_used_gb": lambda run: run.result.memory.device_used_gb,  # NVML: reserved plus the CUDA context
}
# Fields of a run that do not change what is predicted (bookkeeping, or implied by the listed ones).
IGNORED = {"tokens_per_step", "data", "device", "adamw", "warmup_steps", "steps", "allocator", "threads", "tf32"}
IGNORED |= {"micro_batch_basis"}  # why the batch was chosen, not what ran
REQUIRED = {"model", "seq_len", "micro_batch", "grad_accum", "world_size", "dtype", "compile", "attention", "fused_adamw"}
LN_ERROR_DIGITS = 4


@dataclass(frozen=True)
class Entry:
    """One registered prediction, and its measurement once one landed."""

    id: str
    registered_utc: str  # ISO-8601 with its offset: when the prediction was written down
    commit: str  # the commit whose model made the prediction (main's at registration)
    gpu: str  # a gpus.csv name (hardware/specs.py)
    configuration: str  # `key=value` tokens (see the module docstring)
    metric: str  # a METRICS key
    predicted: float
    band_low: float
    band_high: float
    basis: str  # how the prediction was derived: command, model, band
    measured: float | None = None
    measured_utc: str | None = None  # the report's `created`
    measured_report: str | None = None
    ln_error: float | None = None  # ln(predicted / measured), against this registered entry
    note: str = ""

    @property
    def in_band(self) -> bool | None:
        """Whether the measurement fell inside the registered band; None before one landed."""
        return None if self.measured is None else self.band_low <= self.measured <= self.band_high

    def to_row(self) -> dict[str, str]:
        """The CSV row: numbers in full, missing values empty."""
        return {
            f.name: "" if (v := getattr(self, f.name)) is None else _number_text(v) if isinstance(v, float) else str(v)
            for f in fields(self)
        }


def _number_text(value: float) -> str:
    """A float as the CSV holds it: whole numbers without `.0`, others in full (repr round-trips)."""
    return str(int(value)) if value.is_integer() else repr(value)


def _number(path: Path, line: int, column: str, text: str, optional: bool = False) -> float | None:
    if optional and text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise GptbenchError(f"{path}:{line}: {column} must be a number, got {text!r}; fix that row") from None
    if not math.isfinite(value):
        raise GptbenchError(f"{path}:{line}: {column} must be finite, got {text!r}; fix that row")
    return value


def parse_ledger(text: str, path: Path = Path("predictions.csv")) -> list[Entry]:
    """The entries of a ledger's text; a wrong header or a row that is not numbers where numbers go is an error."""
    reader = csv.DictReader(io.StringIO(text))
    if tuple(reader.fieldnames or ()) != COLUMNS:
        raise GptbenchError(f"{path}: the header must be exactly {','.join(COLUMNS)}")
    entries = []
    for line, row in enumerate(reader, start=2):
        if None in row or any(v is None for v in row.values()):
            raise GptbenchError(f"{path}:{line}: expected {len(COLUMNS)} columns; quote a field that holds a comma")
        numbers = {c: _number(path, line, c, row[c]) for c in ("predicted", "band_low", "band_high")}
        optional = {c: _number(path, line, c, row[c], optional=True) for c in ("measured", "ln_error")}
        text_fields = {c: row[c] for c in COLUMNS if c not in numbers and c not in optional}
        for c in ("measured_utc", "measured_report"):
            text_fields[c] = text_fields[c] or None  # empty -> not measured yet
        entries.append(Entry(**text_fields, **numbers, **optional))  # type: ignore[arg-type]  # checked above
    return entries


def read_ledger(path: str | Path) -> list[Entry]:
    """The ledger at `path`."""
    path = Path(path)
    try:
        return parse_ledger(path.read_text(encoding="utf-8"), path)
    except FileNotFoundError:
        raise GptbenchError(f"{path}: no such ledger; benchmarks/predictions.csv is the project's") from None


def format_ledger(entries: Sequence[Entry]) -> str:
    """The ledger's CSV text, header first."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(e.to_row() for e in entries)
    return out.getvalue()


def write_ledger(path: str | Path, entries: Sequence[Entry]) -> Path:
    """Replace the ledger at `path` whole (a temporary file renamed over it)."""
    return write_bytes_atomic(Path(path), [format_ledger(entries).encode("utf-8")])


def parse_configuration(text: str) -> dict[str, str]:
    """`model=124m seq_len=1024 ...` as a dict."""
    pairs = [token.split("=", 1) for token in text.split()]
    if any(len(p) != 2 or not p[0] or not p[1] for p in pairs):
        raise GptbenchError(f"configuration {text!r}: write key=value tokens separated by spaces")
    return dict(pairs)  # pairs of two, checked above


def _text(value: object) -> str:
    return str(value).lower() if isinstance(value, bool) else str(value)


def run_configuration(config: RunConfig) -> dict[str, str]:
    """A run's configuration as the ledger writes it: the preset and every field that changes what is predicted."""
    values = {f.name: _text(getattr(config, f.name)) for f in fields(config) if f.name not in IGNORED | {"model"}}
    return {"model": config.model.preset, **values}


def _defaults() -> dict[str, str]:
    """RunConfig's fields that have a default, and that default as the ledger writes it."""
    return {f.name: _text(f.default) for f in fields(RunConfig) if f.default is not MISSING and f.name not in IGNORED}


def describe_run(config: RunConfig) -> str:
    """The `configuration` text of a row registered for this run's configuration (fields at their default left out)."""
    defaults = _defaults()
    return " ".join(f"{k}={v}" for k, v in run_configuration(config).items() if k in REQUIRED or defaults.get(k) != v)


def matches(entry: Entry, gpu: str, config: RunConfig) -> bool:
    """Whether a run of `config` on GPU `gpu` (a gpus.csv name) measures this entry's prediction."""
    if entry.gpu != gpu:
        return False
    asked, have = parse_configuration(entry.configuration), run_configuration(config)
    return all(have.get(k) == v for k, v in asked.items()) and all(have[k] == v for k, v in _defaults().items() if k not in asked)


def report_gpu(report: Report) -> str:
    """The gpus.csv name of the GPU a report ran on."""
    name = report.machine.accelerator.name or ""
    spec = match_device(name) if report.machine.accelerator.kind == "cuda" else None
    if spec is None:
        raise GptbenchError(f"the report ran on {name or 'no GPU'}, which is not in the GPU spec table; nothing to record")
    return spec.name


def _when(text: str, what: str) -> datetime:
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise GptbenchError(f"{what} {text!r} is not an ISO-8601 time such as 2026-12-06T21:30:00+00:00") from None
    if when.tzinfo is None:
        raise GptbenchError(f"{what} {text!r} has no UTC offset; write it as 2026-12-06T21:30:00+00:00")
    return when


def ln_error(predicted: float, measured: float) -> float:
    """ln(predicted / measured), rounded as the ledger stores it: +0.1 predicted 10.5% high."""
    return round(math.log(predicted / measured), LN_ERROR_DIGITS)


def record(entries: Sequence[Entry], report: Report, report_name: str) -> tuple[list[Entry], list[Entry]]:
    """The ledger with every unmeasured entry this report measures filled in (the median where several runs match),
    and those entries. An entry measured already keeps its first measurement: that is the one its prediction is
    judged by."""
    gpu, ok = report_gpu(report), [r for r in report.runs if r.result.status == "ok"]
    measured_at = _when(report.created, "the report's created time")
    updated, filled = [], []
    for entry in entries:
        values = [v for r in ok if matches(entry, gpu, r.config) and (v := METRICS[entry.metric](r)) is not None]
        if entry.measured is not None or not values:
            updated.append(entry)
            continue
        if measured_at <= _when(entry.registered_utc, f"{entry.id}'s registered_utc"):
            raise GptbenchError(
                f"{report_name} was measured at {report.created}, before {entry.id} was registered "
                f"({entry.registered_utc}): a prediction registered after its measurement cannot be judged by it"
            )
        value = statistics.median(values)
        verdict = "within band" if entry.band_low <= value <= entry.band_high else "MISS: outside the registered band"
        note = f"{entry.note}; {verdict}" if entry.note else verdict
        done = replace(entry, measured=value, measured_utc=report.created, measured_report=report_name,
                       ln_error=ln_error(entry.predicted, value), note=note)  # fmt: skip
        updated.append(done)
        filled.append(done)
    return updated, filled


def _row_problems(entry: Entry) -> list[str]:
    problems = []
    if entry.metric not in METRICS:
        problems.append(f"metric {entry.metric!r} is not one of {', '.join(METRICS)}")
    if not 0 < entry.band_low <= entry.predicted <= entry.band_high:
        problems.append(f"the band {entry.band_low:g}-{entry.band_high:g} must hold the prediction {entry.predicted:g}")
    if not re.fullmatch(r"[0-9a-f]{7,40}", entry.commit):
        problems.append(f"commit {entry.commit!r} is not a git commit id")
    try:
        missing = REQUIRED - set(parse_configuration(entry.configuration))
        registered = _when(entry.registered_utc, "registered_utc")
        if missing:
            problems.append(f"the configuration lacks {', '.join(sorted(missing))}")
        parts = (entry.measured, entry.measured_utc, entry.measured_report, entry.ln_error)
        if any(p is None for p in parts) and any(p is not None for p in parts):
            problems.append("measured, measured_utc, measured_report and ln_error are filled together or not at all")
        elif entry.measured is not None and entry.measured_utc is not None and entry.ln_error is not None:
            if _when(entry.measured_utc, "measured_utc") <= registered:
                problems.append(f"measured at {entry.measured_utc}, not after its registration at {entry.registered_utc}")
            if entry.measured <= 0 or entry.ln_error != ln_error(entry.predicted, entry.measured):
                problems.append(f"ln_error must be ln(predicted / measured) = {ln_error(entry.predicted, entry.measured)}")
    except (GptbenchError, ValueError) as e:
        problems.append(str(e))
    return problems


def check(entries: Sequence[Entry]) -> list[str]:
    """What is wrong with the ledger's rows on their own (ids, bands, times, errors), one line each; [] when nothing."""
    problems, seen = [], set()
    for entry in entries:
        if entry.id in seen:
            problems.append(f"{entry.id}: the id is used twice")
        seen.add(entry.id)
        problems += [f"{entry.id}: {p}" for p in _row_problems(entry)]
    return problems


def history_problems(
    entries: Sequence[Entry],
    versions: Sequence[tuple[str, str, str]],
    is_ancestor: Callable[[str, str], bool],
) -> tuple[list[str], list[str]]:
    """What the file's history says is wrong: a prediction edited after the commit that registered it, registered in
    a commit that does not descend from the model commit it names, or measured before that commit. `versions` are
    (commit, its ISO-8601 commit time, the ledger's text at it), oldest first; `is_ancestor(a, b)` says whether commit
    a is b or an ancestor of it. Returns (problems, rows skipped: their model commit is not in this clone's history,
    or they are not committed yet)."""
    first_seen: dict[str, tuple[str, str, Entry]] = {}
    for commit, committed, text in versions:
        try:
            old = parse_ledger(text)
        except GptbenchError:
            continue  # a version with another header predates the ledger's format
        for e in old:
            first_seen.setdefault(e.id, (commit, committed, e))
    problems, skipped = [], []
    for entry in entries:
        if entry.id not in first_seen:
            skipped.append(f"{entry.id}: not committed yet")
            continue
        commit, committed, registered = first_seen[entry.id]
        if not is_ancestor(entry.commit, entry.commit):
            skipped.append(f"{entry.id}: model commit {entry.commit} is not in this clone's history")
            continue
        if not is_ancestor(entry.commit, commit):
            problems.append(
                f"{entry.id}: registered in {commit[:12]}, which does not descend from its model commit {entry.commit}"
            )
        edited = [c for c in PREDICTION_COLUMNS if getattr(registered, c) != getattr(entry, c)]
        if edited:
            problems.append(
                f"{entry.id}: {', '.join(edited)} changed since its registration in {commit[:12]}; register a new row instead"
            )
        if entry.measured_utc and _when(entry.measured_utc, "measured_utc") <= _when(committed, "commit time"):
            problems.append(f"{entry.id}: measured at {entry.measured_utc}, before its registration was committed ({committed})")
    return problems, skipped
