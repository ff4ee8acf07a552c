"""Runs side by side: a baseline and speed relative to it, what differs between runs, grouping, and money per token."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from gptbench.cloud.estimate import FINEWEB_10B_TOKENS, hours_for
from gptbench.cloud.prices import cheapest_price_per_gpu_hour
from gptbench.errors import GptbenchError
from gptbench.views.load import LoadedRuns, Row, find_column, records, table_columns

# What makes two runs' tokens/s not like for like. Compile, attention and the optimizer are left out on purpose:
# they are what a user usually compares.
DIFFERING: dict[str, tuple[str, ...]] = {
    "model shape": ("model", "n_layer", "n_head", "n_embd", "vocab_size"),
    "seq_len": ("seq_len",),
    "batch (micro_batch×grad_accum×world_size)": ("micro_batch", "grad_accum", "world_size"),
    "dtype": ("dtype", "tf32"),
    "flops_formula": ("flops_formula",),
    "model source (--model-factory)": ("model_source",),
}
# Everything that makes two runs the same configuration, for --group.
CONFIG_KEYS: tuple[str, ...] = ("model", "n_layer", "n_head", "n_embd", "vocab_size", "seq_len", "micro_batch", "grad_accum")
CONFIG_KEYS += ("world_size",)
CONFIG_KEYS += ("dtype", "tf32", "compile", "attention", "adamw", "data", "flops_formula", "model_source")


@dataclass(frozen=True)
class PriceRule:
    """`--price 1.29` (every run) or `--price "rtx 3090=0.46"` (runs whose machine, accelerator, label or GPU match)."""

    usd_per_gpu_hour: float
    pattern: str | None = None  # lower case; None: every run without a more specific rule


@dataclass(frozen=True)
class CompareOptions:
    """How to line the runs up."""

    baseline: str | None = None  # a report file, label or hostname; None: the slowest run
    sort: str | None = None  # a column key; None: the order the reports were given in
    group: bool = False  # identical configurations together, each group with its own baseline
    prices: tuple[PriceRule, ...] = ()


@dataclass(frozen=True)
class Comparison:
    """The runs with every derived column filled, in display order, and what a reader must know first."""

    frame: pd.DataFrame
    baseline: str | None  # which run is 1.00×, in words
    differences: tuple[str, ...]  # "seq_len (256, 1024)": fields whose values differ between runs
    price_notes: tuple[str, ...]  # where each $ figure's price came from, and which runs have none
    group: bool
    skipped: tuple[str, ...]  # warnings about inputs that were not read
    files: int


def parse_prices(values: Sequence[str]) -> tuple[PriceRule, ...]:
    """`--price` values: `USD` or `NAME=USD`, USD per GPU-hour (per machine-hour for a CPU run)."""
    rules = []
    for value in values:
        pattern, _, usd = value.rpartition("=")
        try:
            price = float(usd)
        except ValueError:
            price = -1.0
        if not (math.isfinite(price) and price >= 0) or (value.count("=") and not pattern.strip()):
            raise GptbenchError(
                f"--price {value!r}: expected USD per GPU-hour, for every run (--price 1.29) or for runs whose machine, "
                "accelerator, label or GPU contains NAME (--price 'rtx 3090=0.46')"
            )
        rules.append(PriceRule(price, pattern.strip().lower() or None))
    if sum(rule.pattern is None for rule in rules) > 1:
        raise GptbenchError("--price without NAME= given twice; give one price for every run, or NAME=USD for each machine")
    return tuple(rules)


def _names(row: Row) -> list[str]:
    """What a NAME= price matches: hostname, accelerator, label, GPU row name."""
    return [str(row[k]).lower() for k in ("hostname", "accelerator", "label", "gpu") if row.get(k)]


def price_for(row: Row, rules: Sequence[PriceRule]) -> tuple[float | None, str | None]:
    """(USD per GPU-hour, where it came from) for one run: a matching --price, else the catalog's cheapest for its GPU."""
    for rule in sorted(rules, key=lambda r: r.pattern is None):  # NAME= rules before the catch-all
        if rule.pattern is None or any(rule.pattern in name for name in _names(row)):
            return rule.usd_per_gpu_hour, f"--price {rule.pattern + '=' if rule.pattern else ''}{rule.usd_per_gpu_hour:g}"
    offer = cheapest_price_per_gpu_hour(row["gpu"]) if row.get("gpu") else None
    if offer is None:
        return None, None
    usd, where, observed = offer
    return usd, f"cheapest in the price catalog: {where}, observed {observed}"


def _add_money(frame: pd.DataFrame, rules: Sequence[PriceRule]) -> pd.DataFrame:
    """Epoch hours, $ per billion tokens and $ per epoch; failed runs and runs without a price stay empty."""
    for rule in rules:
        if rule.pattern and not any(rule.pattern in name for row in records(frame) for name in _names(row)):
            raise GptbenchError(f"--price '{rule.pattern}=…': no run's machine, accelerator, label or GPU contains that name")
    prices = [price_for(row, rules) for row in records(frame)]
    frame["price_per_gpu_hour_usd"] = pd.Series([p for p, _ in prices], index=frame.index, dtype=float)
    frame["price_source"] = [s for _, s in prices]
    tokens_per_sec = pd.to_numeric(frame["tokens_per_sec"].where(frame["status"] == "ok"), errors="coerce")
    usd_per_hour = frame["price_per_gpu_hour_usd"] * frame["world_size"]  # tokens/s is global: all ranks
    frame["fineweb_epoch_hours"] = hours_for(FINEWEB_10B_TOKENS, tokens_per_sec)
    frame["usd_per_billion_tokens"] = hours_for(1e9, tokens_per_sec) * usd_per_hour
    frame["fineweb_epoch_usd"] = frame["fineweb_epoch_hours"] * usd_per_hour
    return frame


def _order(frame: pd.DataFrame, sort: str | None, group: bool) -> pd.DataFrame:
    """Sort by a column (its better end first), then, with --group, gather identical configurations."""
    if sort is not None:
        column = find_column(sort)
        if column is None:
            keys = ", ".join(c.key for c in table_columns() if c.higher_is_better is not None)
            raise GptbenchError(f"--sort {sort!r}: no such column; sort by one of {keys} (or any CSV column)")
        frame = frame.sort_values(sort, ascending=not column.higher_is_better, na_position="last", kind="stable")
    if group:
        # groups take the order of their first (best, when sorted) run
        frame["group"] = frame.groupby(list(CONFIG_KEYS), dropna=False, sort=False).ngroup() + 1
        frame = frame.sort_values("group", kind="stable")
    return frame.reset_index(drop=True)


def _is_baseline(frame: pd.DataFrame, baseline: str) -> pd.Series:
    """Runs of the --baseline report: matched by file path, else by label, hostname or file name."""
    target = Path(baseline).resolve() if Path(baseline).exists() else None
    by_file = frame["file"].map(lambda f: target is not None and Path(f).resolve() == target)
    if by_file.any():
        return by_file
    key = baseline.lower()
    names = [(row["label"], row["hostname"], Path(row["file"]).name) for row in records(frame)]
    by_name = pd.Series([key in (str(n).lower() for n in row) for row in names], index=frame.index)
    if not by_name.any():
        raise GptbenchError(f"--baseline {baseline}: not among the compared reports; give one of their files, labels or hosts")
    return by_name


def _add_relative(frame: pd.DataFrame, baseline: str | None, group: bool) -> str | None:
    """Fill relative_speed (tokens/s ÷ the reference run's) per group, or overall; returns the reference in words."""
    tokens_per_sec = pd.to_numeric(frame["tokens_per_sec"].where(frame["status"] == "ok"), errors="coerce")
    chosen = _is_baseline(frame, baseline) if baseline else None
    if chosen is not None and not tokens_per_sec[chosen].notna().any():
        statuses = ", ".join(frame["status"][chosen].unique())
        raise GptbenchError(f"--baseline {baseline}: none of its runs finished (status {statuses}); pick another baseline")
    relative = pd.Series(float("nan"), index=frame.index)
    described = None
    for _, speeds in tokens_per_sec.groupby(frame["group"] if group else [0] * len(frame), sort=False):
        speeds = speeds.dropna()
        if speeds.empty:
            continue
        mine = speeds[chosen[speeds.index]] if chosen is not None else speeds.iloc[:0]
        # the baseline report's first run in this group, else the group's slowest
        reference = pd.to_numeric(frame.loc[mine.index, "run"]).idxmin() if not mine.empty else speeds.idxmin()
        relative[speeds.index] = speeds / speeds[reference]
        described = described or _describe(records(frame.loc[[reference]])[0])
    frame["relative_speed"] = relative
    if described is None:
        return None
    if group:
        where = f"--baseline {baseline} where the group has it, else " if baseline else ""
        return f"1.00× in each group: {where}the group's slowest run"
    return f"1.00× = {f'--baseline {baseline}' if baseline else 'the slowest run'}: {described}"


def _describe(row: dict[str, Any]) -> str:
    cells = {c.key: c.cell(row) for c in table_columns()}
    return f"{cells['hostname']} · {cells['accelerator']} · {cells['model']} · {cells['seq_len']} · {cells['dtype']}"


def differing_fields(frame: pd.DataFrame) -> tuple[str, ...]:
    """The fields whose values differ between finished runs, with their distinct values: `seq_len (256, 1024)`."""
    out = []
    finished = frame[frame["status"] == "ok"]
    for name, keys in DIFFERING.items():
        values: list[str] = []
        for row in records(finished[list(keys)]):
            text = _field_text(name, row)
            if text is not None and text not in values:
                values.append(text)
        if len(values) > 1:
            out.append(f"{name} ({', '.join(values)})" if name != "flops_formula" else f"{name} ({len(values)} formulas)")
    return tuple(out)


def _field_text(name: str, row: Row) -> str | None:
    if any(v is None for v in row.values()):  # an older report without the field: unknown, not different
        return None
    if name == "model shape":
        return f"{row['model']} {row['n_layer']}L/{row['n_head']}H/{row['n_embd']}C/vocab {row['vocab_size']}"
    if name == "dtype":
        return row["dtype"] + ("+tf32" if row["dtype"] == "fp32" and row["tf32"] else "")
    return "×".join(str(v) for v in row.values())


def _price_notes(frame: pd.DataFrame) -> tuple[str, ...]:
    notes = []
    for row in records(frame.drop_duplicates(["accelerator", "price_per_gpu_hour_usd", "price_source"])):
        if row["price_source"]:
            who, unit = (
                (row["accelerator"], "hour")
                if row["accelerator_kind"] == "cpu"
                else (row["gpu"] or row["accelerator"], "GPU-hour")
            )
            notes.append(f"{who}: ${row['price_per_gpu_hour_usd']:,.2f} per {unit} ({row['price_source']})")
    unpriced = frame[(frame["status"] == "ok") & frame["price_per_gpu_hour_usd"].isna()]
    if not unpriced.empty:
        names = ", ".join(dict.fromkeys(f"{r['hostname']} ({r['accelerator']})" for r in records(unpriced)))
        notes.append(f"no price for {names}: pass --price USD (per GPU-hour) or --price NAME=USD")
    return tuple(notes)


def compare(loaded: LoadedRuns, options: CompareOptions) -> Comparison:
    """Derive every comparison column for the loaded runs; nothing readable is an error naming the skipped inputs."""
    if loaded.frame.empty:
        raise GptbenchError(
            "nothing to compare: no readable gptbench report among the inputs"
            + (f" ({len(loaded.warnings)} skipped, see the warnings above)" if loaded.warnings else "")
        )
    frame = _add_money(loaded.frame.copy(), options.prices)
    frame = _order(frame, options.sort, options.group)
    baseline = _add_relative(frame, options.baseline, options.group)
    return Comparison(
        frame=frame,
        baseline=baseline,
        differences=differing_fields(frame),
        price_notes=_price_notes(frame),
        group=options.group,
        skipped=loaded.warnings,
        files=loaded.files,
    )
