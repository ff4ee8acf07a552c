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
DEVICE_LIMIT_ENV = "GPTBENCH_DEVICE_LIMIT_BYTES"  # a CUDA child's cap on its caching allocator (see `cap_device`)
PARENT_ENV = "GPTBENCH_PARENT_PID"  # the parent's pid: a child that finds another parent was orphaned before it looked
PR_SET_PDEATHSIG = 1  # prctl(2), <linux/prctl.h>


def run_in_subprocess(config: BenchConfig, timeout_s: float | None = None, data_limit_gb: float | None = None) -> Run:
    """Measure `config` in a fresh Python process; failures come back as a Run with status oom/error. With
    `data_limit_gb` the child's memory is capped there, so an allocation past it fails inside the child (status oom):
    on a host (Linux) its data segment (`cap_data`), instead of waking the kernel's OOM killer; on CUDA its caching
    allocator (`cap_device`), so the GPU stays shared and an out-of-memory never touches this process's context."""
    payload = json.dumps(config_to_dict(config))
    cmd = [sys.executable, "-m", "gptbench.bench.worker"]
    env = {**worker_env(config.allocator), PARENT_ENV: str(os.getpid())}  # where a preloaded allocator takes effect
    if data_limit_gb is not None:
        key = DEVICE_LIMIT_ENV if config.device.startswith("cuda") else DATA_LIMIT_ENV
        env = {**env, key: str(int(data_limit_gb * GB))}
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


def die_with_parent() -> None:
    """On Linux, have the kernel kill this process (SIGKILL) when its parent dies, even by SIGKILL: a worker, probe or
    rank never outlives the command that started it (prctl(2) PR_SET_PDEATHSIG). A parent already gone by now
    (the pid in GPTBENCH_PARENT_PID is no longer the parent) ends this process at once. Elsewhere nothing is done:
    there the parent's own cleanup (subprocess.run kills its child on any exception) is all there is."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    expected = os.environ.get(PARENT_ENV)
    if expected is not None and expected.isdigit() and os.getppid() != int(expected):
        os._exit(1)


def cap_device(device: str, limit_bytes: int) -> float:
    """Cap this process's CUDA caching allocator on `device` at `limit_bytes` and return the fraction set.
    torch.cuda.set_per_process_memory_fraction(fraction, device) allows total_memory × fraction, takes a float in
    0..1 (a TypeError or ValueError otherwise) and makes an allocation past it raise out-of-memory in the allocator
    (torch/cuda/memory.py, torch 2.13): the run then ends as `oom` in this process alone."""
    import torch

    index = torch.device(device).index  # "cuda" names no index, which the setter refuses (torch/cuda/_utils.py)
    index = torch.cuda.current_device() if index is None else index
    total = torch.cuda.get_device_properties(index).total_memory
    fraction = float(min(1.0, max(0.0, limit_bytes / total)))
    torch.cuda.set_per_process_memory_fraction(fraction, index)
    return fraction


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
    die_with_parent()
    if os.environ.get(DATA_LIMIT_ENV) and sys.platform.startswith("linux"):
        cap_data(int(os.environ[DATA_LIMIT_ENV]))
    try:
        config = config_from_dict(json.loads(sys.stdin.read()))
        if os.environ.get(DEVICE_LIMIT_ENV) and config.device.startswith("cuda"):
            cap_device(config.device, int(os.environ[DEVICE_LIMIT_ENV]))
        run = run_benchmark(config)  # a --model-factory module whose output gptbench cannot use is refused here
    except GptbenchError as e:
        sys.stderr.write(f"{e}\n")
        sys.exit(2)
    sys.stdout.write(RESULT_PREFIX + json.dumps(dataclasses.asdict(run)) + "\n")
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown: nothing is left to flush, and CUDA teardown can be slow


if __name__ == "__main__":
    main()
