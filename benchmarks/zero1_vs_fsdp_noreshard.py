"""Which engine serves `--shard optimizer`: ZeroRedundancyOptimizer under DDP (ZeRO-1) or FSDP2 with
reshard_after_forward=False (weights gathered once per step, gradients and moments sharded: ZeRO-2-like).

Run it as `python benchmarks/zero1_vs_fsdp_noreshard.py` (it launches both, two ranks each, over gloo on this CPU) and
it prints each engine's median step time and per-rank peak RSS, and the ratio FSDP2 / ZeRO-1 measured in the same run.
Results with the machine and date are in docs/sharding.md."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL, SEQ, BATCH, STEPS = "124m", 64, 1, 6


def rank_main(engine: str) -> None:
    import torch
    import torch.distributed as dist

    from gptbench.bench.distributed import wrap_ddp
    from gptbench.bench.memory import _peak_rss_bytes
    from gptbench.bench.sharding import make_adamw, make_zero_adamw
    from gptbench.model.config import GPTConfig
    from gptbench.model.gpt import GPT

    dist.init_process_group("gloo")
    torch.manual_seed(1337)
    model = GPT(GPTConfig.from_name(MODEL).padded())
    if engine == "zero1":
        wrapped, optimizer = wrap_ddp(model, torch.device("cpu"), False), make_zero_adamw(model, 6e-4, "foreach")
    else:
        from torch.distributed.fsdp import fully_shard

        for block in model.h:
            fully_shard(block, reshard_after_forward=False)
        wrapped = fully_shard(model, reshard_after_forward=False)
        optimizer = make_adamw(model, 6e-4, "foreach")
    gen = torch.Generator().manual_seed(1337 + dist.get_rank())
    times = []
    for _ in range(STEPS):
        idx = torch.randint(0, 50257, (BATCH, SEQ + 1), generator=gen)
        start = time.perf_counter()
        wrapped(idx[:, :-1], idx[:, 1:]).backward()
        torch.nn.utils.clip_grad_norm_(list(model.parameters()), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        dist.barrier()
        times.append(time.perf_counter() - start)
    found: list = [None] * dist.get_world_size()
    dist.all_gather_object(found, _peak_rss_bytes() / 1e9)
    if dist.get_rank() == 0:
        print("RESULT " + json.dumps({"step_s": statistics.median(times[1:]), "rss_gb": found}))
    dist.destroy_process_group()


def launch(engine: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", __file__, engine]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(next(line for line in out.splitlines() if line.startswith("RESULT "))[7:])


if __name__ == "__main__":
    if len(sys.argv) > 1:
        rank_main(sys.argv[1])
        sys.exit(0)
    results = {engine: launch(engine) for engine in ("zero1", "fsdp2-noreshard")}
    for engine, r in results.items():
        rss = ", ".join(f"{g:.2f}" for g in r["rss_gb"])
        print(f"{engine:16s} median step {r['step_s']:.3f} s   peak RSS per rank {rss} GB")
    ratio = results["fsdp2-noreshard"]["step_s"] / results["zero1"]["step_s"]
    print(f"GPT-2 {MODEL}, 2 ranks x batch {BATCH} x seq {SEQ}, gloo, fp32: FSDP2 (no reshard) / ZeRO-1 step time = {ratio:.2f}")
