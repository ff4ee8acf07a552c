"""Multi-process training on PyTorch's own engine: the process group torchrun describes (with timeouts),
DistributedDataParallel, a barrier per timed step, per-rank memory, scaling efficiency against a
single-process run, and the `--nproc` launcher, which is `python -m torch.distributed.run` itself."""

from __future__ import annotations

import dataclasses
import datetime
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from gptbench.bench.config import BenchConfig
from gptbench.errors import GptbenchError, first_line
from gptbench.hardware.device import resolve_device, synchronize
from gptbench.reports.schema import Accelerator, Memory, Run, RunConfig
from gptbench.reports.store import load_report

# How long the process group may wait for a rank (forming the group, any collective, a step's barrier) before
# it gives up and the run ends. Ranks compile the same graphs side by side, so the wait is their skew, not
# the whole compilation.
DEFAULT_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class RankEnv:
    """This process's place in the job, as torchrun (or any env:// launcher) describes it."""

    rank: int
    world_size: int
    local_rank: int

    @classmethod
    def from_environ(cls, env: Mapping[str, str] | None = None) -> RankEnv | None:
        """The job described by RANK, WORLD_SIZE and LOCAL_RANK, or None when this process was not launched as a rank."""
        env = os.environ if env is None else env
        if "RANK" not in env or "WORLD_SIZE" not in env:
            return None
        values = {key: env.get(key, env["RANK"]) for key in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
        if not all(v.strip().isdigit() for v in values.values()) or int(values["WORLD_SIZE"]) < 1:
            shown = " ".join(f"{k}={v}" for k, v in values.items())
            raise GptbenchError(f"{shown}: expected whole numbers with WORLD_SIZE ≥ 1 (torchrun sets them; launch with it)")
        return cls(int(values["RANK"]), int(values["WORLD_SIZE"]), int(values["LOCAL_RANK"]))


def launched_as_rank() -> bool:
    """Whether this process is one rank of a torchrun (env://) job."""
    return RankEnv.from_environ() is not None


def is_distributed() -> bool:
    """Whether a process group is up in this process."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank, 0 outside a process group."""
    return dist.get_rank() if is_distributed() else 0


def multi_process_device(device: str) -> torch.device:
    """The kind of device `--device` names, refusing what cannot run one process per device (MPS, a fixed cuda:N)."""
    key = device.strip().lower()
    if key.startswith("cuda:"):
        raise GptbenchError(
            f"--device {device}: with several processes each takes its own GPU (cuda:LOCAL_RANK); pass --device cuda "
            "and pick GPUs with CUDA_VISIBLE_DEVICES"
        )
    resolved = resolve_device(key)
    if resolved.type == "mps":
        raise GptbenchError(
            f"--device {device}: MPS has no torch.distributed backend; multi-process runs need CUDA (nccl) or --device cpu (gloo)"
        )
    return resolved


def check_nproc(nproc: int, device: str, gpus: int | None = None) -> torch.device:
    """Refuse `--nproc` values this machine cannot run: fewer than one, on MPS, or more processes than GPUs."""
    if nproc < 1:
        raise GptbenchError(f"--nproc must be 1 or more (processes to launch), got {nproc}")
    resolved = multi_process_device(device)
    if resolved.type == "cuda":
        count = torch.cuda.device_count() if gpus is None else gpus
        if nproc > count:
            raise GptbenchError(f"--nproc {nproc}: this machine has {count} CUDA GPU(s), one per process; use --nproc {count}")
    return resolved


def claim_device(device: str, env: RankEnv) -> str:
    """The `--device` this rank uses: its own GPU, cuda:LOCAL_RANK, made current so that nothing lands on
    GPU 0 by accident (a CUDA context of every rank there); CPU ranks share the CPU."""
    resolved = multi_process_device(device)
    if resolved.type != "cuda":
        return "cpu"
    count = torch.cuda.device_count()
    if env.local_rank >= count:
        raise GptbenchError(
            f"LOCAL_RANK {env.local_rank}: this node has {count} CUDA GPU(s); start at most {count} processes per node"
        )
    torch.cuda.set_device(env.local_rank)
    return f"cuda:{env.local_rank}"


@contextmanager
def process_group(config: BenchConfig, env: RankEnv, timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[BenchConfig]:
    """Join the job's process group (nccl on CUDA, gloo on CPU) and yield `config` with the group's world size.
    A rank that does not arrive within `timeout_s` ends the wait with an error instead of a hang."""
    if not timeout_s > 0:
        raise GptbenchError(f"--dist-timeout must be a positive number of seconds, got {timeout_s:g}")
    device = config.torch_device
    backend = "nccl" if device.type == "cuda" else "gloo"
    device_id = device if device.type == "cuda" else None  # nccl: form the communicator now, not at step 1
    try:
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=timeout_s), device_id=device_id)
    except (RuntimeError, ValueError) as e:  # DistStoreError, DistNetworkError: ranks missing or unreachable
        where = f"{os.environ.get('MASTER_ADDR', '?')}:{os.environ.get('MASTER_PORT', '?')}"
        raise GptbenchError(
            f"rank {env.rank} of {env.world_size}: the process group did not form within {timeout_s:g} s "
            f"(--dist-timeout): {first_line(e)}; check that every rank was started and can reach {where}"
        ) from None
    yield dataclasses.replace(config, world_size=dist.get_world_size())
    # Left only on success: after a failure the peers may be gone, and tearing down a broken communicator can
    # block; the process is about to exit and torchrun stops the others. The barrier first: every rank has finished
    # its collectives before any tears down, since a gloo rank whose peer closed its connections mid-teardown can
    # end in std::terminate ("terminate called without an active exception", seen once on a loaded 2-core CI
    # machine with --shard, 2026-12-04).
    dist.barrier()
    dist.destroy_process_group()


def wrap_ddp(model: torch.nn.Module, device: torch.device, compile: bool, mode: str = "default") -> DistributedDataParallel:
    """`model` under DistributedDataParallel, compiled first when asked (in torch.compile's `mode`)."""
    # The order torch documents ("Where to apply torch.compile?", pytorch.org, 2025-07): compile the inner
    # module, then wrap it. Dynamo then traces the model's own code instead of DDP's Python hooks, which it
    # "doesn't handle very well", and its DDPOptimizer still splits the graph at DDP's gradient-bucket
    # boundaries, so each bucket's all-reduce overlaps the rest of the backward pass.
    if compile:
        model.compile(**compile_kwargs(mode))
    return DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)


def compile_kwargs(mode: str) -> dict[str, Any]:
    """torch.compile's keyword for `--compile-mode`: none for the default, so the call is torch's plain one."""
    return {} if mode == "default" else {"mode": mode}


def sync_ranks(device: torch.device) -> None:
    """Wait until this device is idle and then until every rank is: rank 0's step clock covers the slowest rank."""
    synchronize(device)
    if is_distributed():
        dist.barrier()  # nccl's barrier also blocks the host until its kernel has run


def gather_memory(memory: Memory) -> list[Memory]:
    """Every rank's peak memory in rank order (on every rank); empty outside a process group."""
    if not is_distributed():
        return []
    found: list[dict[str, Any]] = [{} for _ in range(dist.get_world_size())]
    dist.all_gather_object(found, dataclasses.asdict(memory))
    return [Memory(**m) for m in found]


# --- scaling efficiency -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Baseline:
    """The single-process run that scaling efficiency divides by, and where it came from."""

    run: Run
    source: str


def _setup_key(c: RunConfig) -> tuple[object, ...]:
    """What makes two runs 'the same configuration' per process: shape, batch, precision, kernels, data, device kind."""
    m = c.model
    shape = (m.n_layer, m.n_head, m.n_embd, m.vocab_size, m.block_size)
    step = (c.seq_len, c.micro_batch, c.grad_accum, c.dtype, c.compile, c.attention, c.tf32, c.fused_adamw, c.data)
    # Checkpointing changes the work per token, and the loss, compile mode and FP8 its speed; sharding does not (its
    # single-process baseline holds everything).
    frontier = (c.loss, c.compile_mode, c.fp8)
    return (*shape, *step, c.activation_checkpointing, *frontier, (c.device or "").split(":")[0])


def find_baseline(path: str | Path, wanted: RunConfig, accelerator: Accelerator, source: str | None = None) -> Baseline:
    """The ok single-process run of `wanted`'s configuration in the report at `path`, on the same hardware."""
    report = load_report(path)
    theirs = report.machine.accelerator
    if (theirs.kind, theirs.name) != (accelerator.kind, accelerator.name):
        raise GptbenchError(
            f"--baseline-report {path} was measured on {theirs.name or theirs.kind}, this run is on "
            f"{accelerator.name or accelerator.kind}; the single-process baseline must come from the same hardware"
        )
    key = _setup_key(wanted)
    for index, run in enumerate(report.runs):
        if (
            run.config.world_size == 1
            and run.result.status == "ok"
            and run.result.tokens_per_sec
            and _setup_key(run.config) == key
        ):
            return Baseline(run, source or f"{path} run {index}")
    c = wanted
    raise GptbenchError(
        f"--baseline-report {path} has no ok single-process run of this configuration ({c.model.preset}, seq {c.seq_len} "
        f"× batch {c.micro_batch} × accum {c.grad_accum}, {c.dtype}, {'compiled' if c.compile else 'eager'}, data {c.data}); "
        "measure one with the same options and no --nproc, or use --scaling"
    )


def attach_scaling(run: Run, baseline: Baseline) -> None:
    """Fill `run`'s scaling efficiency: global tokens/s ÷ (world size × the single process's tokens/s)."""
    result, base = run.result, baseline.run.result.tokens_per_sec
    if result.status != "ok" or not result.tokens_per_sec or not base:
        return
    result.scaling_efficiency = round(result.tokens_per_sec / (run.config.world_size * base), 4)
    result.baseline_tokens_per_sec = base
    result.baseline_source = baseline.source


# --- the launcher ---------------------------------------------------------------------------------------


def torchrun_command(nproc: int, target: list[str]) -> list[str]:
    """`python -m torch.distributed.run` on this node with `nproc` workers, each running `target`
    (`-m gptbench run ...` or a script). Standalone: a local rendezvous on a free port."""
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *target]


@contextmanager
def cpu_share(nproc: int) -> Iterator[None]:
    """Inside: OMP_NUM_THREADS = this process's threads ÷ `nproc` (unless already set), for the processes started
    there; every rank, and --scaling's single process, then get the same share of the CPU."""
    before = os.environ.get("OMP_NUM_THREADS")
    if before is None:  # torchrun's own default would be 1 per rank, announced with a banner
        os.environ["OMP_NUM_THREADS"] = str(max(1, torch.get_num_threads() // nproc))
    try:
        yield
    finally:
        if before is None:
            os.environ.pop("OMP_NUM_THREADS", None)


# How long torchrun gets to stop its ranks after this process is interrupted, before it is killed.
STOP_GRACE_S = 30.0


def launch(nproc: int, target: list[str]) -> int:
    """Run `target` as `nproc` ranks under torch.distributed.run and return its exit code. If a rank dies,
    torchrun stops the others at once (max restarts 0) and exits non-zero; the output goes to this terminal.
    Interrupted (SIGINT, SIGTERM), this process passes SIGTERM on to torchrun, which stops its ranks, and waits for
    it: subprocess.run would SIGKILL torchrun, which cannot then stop them (each rank also dies with its parent)."""
    proc = subprocess.Popen(torchrun_command(nproc, target))
    try:
        return proc.wait()
    except BaseException:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        raise
