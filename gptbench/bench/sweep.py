"""`gptbench sweep`: the cross product of option lists, one run each in its own process, each written to the
report as it finishes, so Ctrl-C or a crash keeps every finished run."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Callable
from dataclasses import dataclass, replace

from gptbench.bench.config import BenchConfig, RunOptions, resolve_config
from gptbench.bench.worker import run_in_subprocess
from gptbench.errors import GptbenchError
from gptbench.reports.schema import Report, Run, RunResult
from gptbench.reports.store import ReportFile

AXES = ("micro_batch", "seq_len", "dtype", "compile", "attention")
AXIS_FLAGS = {"micro_batch": "batch", "seq_len": "seq", "dtype": "dtype", "compile": "compile", "attention": "attention"}


def parse_list(flag: str, text: str | None, kind: type) -> list | None:
    """`4,8,16` -> [4, 8, 16]; `on,off` -> [True, False] for booleans; None stays None (the axis is not swept)."""
    if text is None:
        return None
    values = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            raise GptbenchError(f"--{flag} {text!r}: an empty item; give a comma-separated list such as 4,8,16")
        if kind is bool:
            if item.lower() not in ("on", "off", "true", "false"):
                raise GptbenchError(f"--{flag} {text!r}: use on or off")
            values.append(item.lower() in ("on", "true"))
        elif kind is int:
            if not item.isdigit() or int(item) <= 0:
                raise GptbenchError(f"--{flag} {text!r}: {item!r} is not a positive whole number")
            values.append(int(item))
        else:
            values.append(item.lower())
    return list(dict.fromkeys(values))  # drop repeats, keep order


@dataclass(frozen=True)
class SweepPlan:
    configs: list[BenchConfig]
    names: list[str]


def plan_sweep(base: RunOptions, axes: dict[str, list | None]) -> SweepPlan:
    """Every combination of the swept values on top of `base`, each resolved and validated before anything runs."""
    swept = {k: v for k, v in axes.items() if v}
    if not swept:
        raise GptbenchError("nothing to sweep: give at least one of --batch, --seq, --dtype, --compile, --attention")
    configs, names = [], []
    for values in itertools.product(*swept.values()):
        choice = dict(zip(swept, values, strict=True))
        name = " ".join(f"{AXIS_FLAGS[k]}={_show(v)}" for k, v in choice.items())
        try:
            configs.append(resolve_config(replace(base, **choice)))
        except GptbenchError as e:
            raise GptbenchError(f"sweep point {name}: {e}") from e
        names.append(name)
    return SweepPlan(configs, names)


def _show(value: object) -> str:
    return ("on" if value else "off") if isinstance(value, bool) else str(value)


@dataclass(frozen=True)
class SeriesItem:
    name: str
    config: BenchConfig
    skipped: str | None = None  # why this point is not run here (recorded as status "skipped")
    measured: Run | None = None  # the same configuration, already measured in this invocation (suite)


def run_series(
    items: list[SeriesItem],
    report: Report,
    out_dir: str,
    on_start: Callable[[int, str], None] | None = None,
    on_run: Callable[[Run], None] | None = None,
) -> ReportFile:
    """Measure each item in a fresh process, rewriting the report after each one so no finished run is lost."""
    from gptbench.bench.runner import planned_params, run_config

    file = ReportFile(out_dir, report)
    for i, item in enumerate(items):
        if on_start:
            on_start(i, item.name)
        if item.skipped:
            run = Run(run_config(item.config, planned_params(item.config)), RunResult(status="skipped", error=item.skipped))
        elif item.measured is not None:
            run = dataclasses.replace(item.measured)
        else:
            run = run_in_subprocess(item.config)
        run.name = item.name
        report.runs.append(run)
        file.update(report)
        if on_run:
            on_run(run)
    return file


def sweep_items(plan: SweepPlan) -> list[SeriesItem]:
    """The sweep's points as a series to run."""
    return [SeriesItem(name, config) for config, name in zip(plan.configs, plan.names, strict=True)]


def fastest(runs: list[Run]) -> Run | None:
    """The ok run with the highest median tokens/s."""
    ok = [r for r in runs if r.result.status == "ok" and r.result.tokens_per_sec]
    return max(ok, key=lambda r: r.result.tokens_per_sec) if ok else None
