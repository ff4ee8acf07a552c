"""Does telemetry sampling cost throughput? Target: at most 1% of tokens/s.

Runs the same train step, alternately in one process, with the telemetry sampler around the measured steps and
without it; prints the median tokens/s of each and their ratio. Then times one sample directly, which bounds the
cost without the run-to-run noise of the A/B: sample time x sampling rate = the share of one core the sampler takes.
On a CPU-only machine the sampler reads /proc and /sys only: the NVML path (one library call per reading) is not
measured here.

    python benchmarks/telemetry_overhead.py                    # tiny preset, CPU, 12 rounds of 4 steps
    python benchmarks/telemetry_overhead.py --model small --rounds 8
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

from gptbench.bench.config import RunOptions, resolve_config
from gptbench.bench.harness import measure
from gptbench.bench.step import Trainer
from gptbench.bench.telemetry import INTERVAL_S, sampler_for
from gptbench.data.sources import make_source
from gptbench.hardware.device import synchronize


def run_turn(trainer: Trainer, steps: int, sampled: bool) -> list[float]:
    """`steps` measured steps, with a fresh sampler around them when `sampled`; per-step seconds."""
    device = trainer.config.torch_device
    sampler = sampler_for(device) if sampled else None
    timing = measure(trainer.step, lambda: synchronize(device), 0, steps, trainer.config.tokens_per_step, during_measure=sampler)
    if sampler is not None:
        sampler.summary(trainer.config.tokens_per_step * steps)  # the summary is part of what a run pays
    return timing.step_times_s


def sample_cost_s(device: torch.device, repeats: int = 200) -> float:
    """Median seconds of one sample (what the thread does every INTERVAL_S)."""
    sampler = sampler_for(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        sampler.sample()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny", help="preset: tiny or small (124m shape, short seq)")
    parser.add_argument("--rounds", type=int, default=12, help="turns per contender (round-robin)")
    parser.add_argument("--steps", type=int, default=4, help="measured steps per turn")
    args = parser.parse_args()
    model = {"tiny": dict(model="tiny"), "small": dict(model="124m", seq_len=64, micro_batch=1)}[args.model]
    config = resolve_config(RunOptions(device="cpu", **model))
    trainer = Trainer(config, make_source(config.data, config.micro_batch, config.seq_len, config.torch_device))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads · {config.model.preset}, seq {config.seq_len} x batch"
        f" {config.micro_batch}, {config.dtype}, CPU · sampler every {INTERVAL_S} s"
    )
    run_turn(trainer, 2, sampled=False)  # warm-up, not counted
    times: dict[bool, list[float]] = {True: [], False: []}
    paired: list[float] = []  # per round: with / without, so slow drift in the machine's load cancels
    for r in range(args.rounds):
        turn: dict[bool, list[float]] = {}
        for sampled in (r % 2 == 0, r % 2 == 1):  # alternate who goes first: the first turn of a round runs slower
            turn[sampled] = run_turn(trainer, args.steps, sampled)
            times[sampled] += turn[sampled]
        paired.append(statistics.median(turn[False]) / statistics.median(turn[True]))
    tokens = config.tokens_per_step
    rate = {k: statistics.median(tokens / t for t in v) for k, v in times.items()}
    print(f"  without sampler  {rate[False]:10,.0f} tok/s median over {len(times[False])} steps")
    print(f"  with sampler     {rate[True]:10,.0f} tok/s median over {len(times[True])} steps")
    print(f"  ratio of medians with/without: {rate[True] / rate[False]:.4f} (cost {1 - rate[True] / rate[False]:+.2%})")
    ratio = statistics.median(paired)
    print(f"  median of {len(paired)} paired rounds with/without: {ratio:.4f} (cost {1 - ratio:+.2%}; target <= 1%)")
    print(f"  load average (1 min) at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs: above it, the A/B is noise")
    cost = sample_cost_s(config.torch_device)
    share = cost / INTERVAL_S
    print(f"  one sample: {cost * 1e6:,.0f} us -> {share:.3%} of one core at {1 / INTERVAL_S:.0f} Hz (target <= 1%)")
    print("  NVML path not measured: no NVIDIA GPU on this machine" if not torch.cuda.is_available() else "")


if __name__ == "__main__":
    main()
