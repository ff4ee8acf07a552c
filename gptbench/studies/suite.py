"""`gptbench suite`'s one decision between its measurements: which runs its ladder can take from the runs before it."""

from __future__ import annotations

import dataclasses

from gptbench.bench.config import BenchConfig
from gptbench.reports.schema import Run


def ladder_reuse(config: BenchConfig, default_run: Run, batch_runs: list[Run]) -> tuple[int | None, dict[BenchConfig, Run]]:
    """The largest micro-batch that ran ok in the batch search (None: none did), and the runs the ladder need not
    measure again: the default configuration's and each ok batch's (on a GPU the default is the ladder's top rung)."""
    ok = [r for r in batch_runs if r.result.status == "ok"]
    largest = max(r.config.micro_batch for r in ok) if ok else None
    measured = {config: default_run, **{dataclasses.replace(config, micro_batch=r.config.micro_batch): r for r in ok}}
    return largest, measured
