"""Run one measured configuration in a child process, so that an out-of-memory error (which can poison a
process under torch.compile) or a crash ends that run alone. The parent sends a config on stdin and gets a Run
back as one tagged JSON line on stdout; the child is this module, run as `python -m gptbench.bench.worker`."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys

from gptbench.bench.config import BenchConfig, config_from_dict, config_to_dict
from gptbench.bench.runner import planned_params, run_benchmark, run_config
from gptbench.errors import GptbenchError
from gptbench.hardware.allocator import worker_env
from gptbench.reports.schema import Run, RunResult, build
from gptbench.reports.text import GB

RESULT_PREFIX = "GPTBENCH-RUN "  # the line of the child's stdout that carries its Run (child side: `main` below)
# The child's hard memory cap, in bytes, passed in the environment rather than set by a preexec_fn: Python's docs
# call preexec_fn "not safe to use in the presence of threads", and the parent has torch's threads.
DATA_LIMIT_ENV = "GPTBENCH_DATA_LIMIT_BYTES"


def run_in_subprocess(config: BenchConfig, timeout_s: float | None = None, data_limit_gb: float | None = None) -> Run:
    """Measure `config` in a fresh Python process; failures come back as a Run with status oom/error. With
    `data_limit_gb` (Linux) the child's data segment is capped there, so an allocation past it fails inside the
    child (status oom) instead of waking the kernel's OOM killer; see `cap_data`."""
    payload = json.dumps(config_to_dict(config))
    cmd = [sys.executable, "-m", "gptbench.bench.worker"]
    env = worker_env(config.allocator)  # a fresh process is where a preloaded allocator takes effect
    if data_limit_gb is not None:
        env = {**env, DATA_LIMIT_ENV: str(int(data_limit_gb * GB))}
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


def cap_data(limit_bytes: int) -> None:
    """Cap this process's data segment (RLIMIT_DATA, soft and hard) at `limit_bytes`: past it malloc and anonymous
    mmap fail, and torch raises "can't allocate memory", which the run reports as `oom`.

    RLIMIT_DATA, not RLIMIT_AS: the address space also counts what is reserved but never touched. A torch process
    with 16 threads on this 2-core VM (2026-12-04) had VmSize 1.95 GB for 0.33 GB resident (glibc's 64 MB arena per
    thread, thread stacks, libtorch's mapped text) but VmData 0.62 GB; the reservations grow with the cores, so an
    address-space cap would refuse big machines' runs that fit. Since Linux 4.7 RLIMIT_DATA counts private writable
    mappings, anonymous mmap included (setrlimit(2)), which is where tensors live. Not covered: file-backed and
    shared mappings (libraries, memory-mapped token shards), and a GPU driver's mappings - host (CPU) runs only."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:  # raising a hard limit needs CAP_SYS_RESOURCE: a stricter one set outside stays
        limit_bytes = min(limit_bytes, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit_bytes, limit_bytes))


def main() -> None:
    """The child: measure the configuration on stdin; a config that is refused exits 2 with its message on stderr."""
    if os.environ.get(DATA_LIMIT_ENV) and sys.platform.startswith("linux"):
        cap_data(int(os.environ[DATA_LIMIT_ENV]))
    try:
        config = config_from_dict(json.loads(sys.stdin.read()))
        run = run_benchmark(config)  # a --model-factory module whose output gptbench cannot use is refused here
    except GptbenchError as e:
        sys.stderr.write(f"{e}\n")
        sys.exit(2)
    sys.stdout.write(RESULT_PREFIX + json.dumps(dataclasses.asdict(run)) + "\n")
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: nothing is left to flush, and CUDA teardown can be slow


if __name__ == "__main__":
    main()
