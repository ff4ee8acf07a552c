"""`gptbench sweep`: the cross product of option lists, one run each in its own process, each written to the
report as it finishes, so Ctrl-C or a crash keeps every finished run."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Any

from gptbench.bench.config import BenchConfig, RunOptions, resolve_config
from gptbench.errors import GptbenchError
from gptbench.studies.series import SeriesItem

AXES = ("micro_batch", "seq_len", "dtype", "compile", "attention", "activation_checkpointing", "loss", "compile_mode", "fp8")
AXIS_FLAGS = {
    "micro_batch": "batch",
    "seq_len": "seq",
    "dtype": "dtype",
    "compile": "compile",
    "attention": "attention",
    "activation_checkpointing": "activation-checkpointing",
    "loss": "loss",
    "compile_mode": "compile-mode",
    "fp8": "fp8",
}


Axis = bool | int | str  # one value of a swept option (`--batch 4,8`, `--compile on,off`)


@dataclass(frozen=True)
class SweepPlan:
    configs: list[BenchConfig]
    names: list[str]


def plan_sweep(base: RunOptions, axes: dict[str, list[Axis] | None]) -> SweepPlan:
    """Every combination of the swept values on top of `base`, each resolved and validated before anything runs."""
    swept = {k: v for k, v in axes.items() if v}
    if not swept:
        flags = ", ".join(f"--{flag}" for flag in AXIS_FLAGS.values())
        raise GptbenchError(f"nothing to sweep: give at least one of {flags}")
    configs, names = [], []
    for values in itertools.product(*swept.values()):
        choice: dict[str, Any] = dict(zip(swept, values, strict=True))  # RunOptions' fields, each of its own type
        name = " ".join(f"{AXIS_FLAGS[k]}={_show(v)}" for k, v in choice.items())
        try:
            configs.append(resolve_config(replace(base, **choice)))
        except GptbenchError as e:
            raise GptbenchError(f"sweep point {name}: {e}") from e
        names.append(name)
    return SweepPlan(configs, names)


def _show(value: object) -> str:
    return ("on" if value else "off") if isinstance(value, bool) else str(value)


def sweep_items(plan: SweepPlan) -> list[SeriesItem]:
    """The sweep's points as a series to run."""
    return [SeriesItem(name, config) for config, name in zip(plan.configs, plan.names, strict=True)]
