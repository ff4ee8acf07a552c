"""Run one measured configuration in a child process, so that an out-of-memory error (which can poison a
process under torch.compile) or a crash ends that run alone. The parent sends a config, gets a Run back."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from gptbench.bench.allocator import worker_env
from gptbench.bench.config import BenchConfig, config_to_dict
from gptbench.errors import GptbenchError
from gptbench.reports.schema import Run, RunResult, build

RESULT_PREFIX = "GPTBENCH-RUN "  # the line of the child's stdout that carries its Run (child side: gptbench/cli/worker.py)


def run_in_subprocess(config: BenchConfig, timeout_s: float | None = None) -> Run:
    """Measure `config` in a fresh Python process; failures come back as a Run with status oom/error."""
    from gptbench.bench.runner import planned_params, run_config

    payload = json.dumps(config_to_dict(config))
    cmd = [sys.executable, "-m", "gptbench.cli.worker"]
    env = worker_env(config.allocator)  # a fresh process is where a preloaded allocator takes effect
    try:
        proc = subprocess.run(cmd, input=payload, capture_output=True, text=True, timeout=timeout_s, check=False, env=env)
    except subprocess.TimeoutExpired:
        result = RunResult(status="error", error=f"the run took longer than {timeout_s:.0f} s and was stopped")
        return Run(run_config(config, planned_params(config)), result)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return build(Run, json.loads(line[len(RESULT_PREFIX) :]))
    if proc.returncode == 2 and proc.stderr.strip():
        raise GptbenchError(proc.stderr.strip().splitlines()[-1])
    result = RunResult(status="error", error=_describe_exit(proc.returncode, proc.stderr))
    return Run(run_config(config, planned_params(config)), result)


def _describe_exit(code: int, stderr: str) -> str:
    if code < 0:
        name = signal.Signals(-code).name
        hint = " (the kernel's out-of-memory killer?)" if name == "SIGKILL" else ""
        return f"the worker process died with {name}{hint}"
    last = stderr.strip().splitlines()[-1] if stderr.strip() else "no output"
    return f"the worker process exited with code {code}: {last[:300]}"
