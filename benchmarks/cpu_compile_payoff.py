"""Does torch.compile pay for itself in a CPU benchmark run of the default length? (It sets `compile`'s CPU default.)

Alternates, round by round, gptbench's default CPU run eager and the same run compiled, each in a fresh worker
process (the tcmalloc preload and threads as `gptbench run` sets them), each compiled run with an empty inductor
cache (a first run on a machine compiles from scratch). Prints the medians of warm-up (compilation included) and
step time, the whole run's time both ways (warm-up + measured steps), and the steps after which compiling breaks even.

    python benchmarks/cpu_compile_payoff.py             # gptbench's default CPU run: 124M, seq 1024, batch 1
    python benchmarks/cpu_compile_payoff.py --quick     # 4 layers, 256 wide, seq 256, batch 8
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from dataclasses import replace

from gptbench.bench.config import RunOptions, resolve_config
from gptbench.bench.worker import run_in_subprocess

QUICK = {"n_layer": 4, "n_head": 4, "n_embd": 256, "seq_len": 256, "micro_batch": 8}


def measure(config: object, compiled: bool) -> tuple[float, float]:
    """(warm-up s, median step s) of one run in a fresh worker; a compiled one starts from an empty inductor cache."""
    with tempfile.TemporaryDirectory() as cache:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = cache  # the worker inherits it
        try:
            run = run_in_subprocess(replace(config, compile=compiled))
        finally:
            del os.environ["TORCHINDUCTOR_CACHE_DIR"]
    r = run.result
    if r.status != "ok":
        raise SystemExit(f"{'compiled' if compiled else 'eager'} run failed: {r.status}: {r.error}")
    return r.warmup_s, r.step_time_s


def medians(pairs: list[tuple[float, float]]) -> tuple[float, float]:
    """(median warm-up s, median step s) over rounds."""
    return statistics.median(w for w, _ in pairs), statistics.median(s for _, s in pairs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 layers, 256 wide, seq 256, batch 8 (instead of 124M)")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    config = resolve_config(RunOptions(device="cpu", **(QUICK if args.quick else {})))
    runs = config.warmup_steps + config.steps
    print(f"load average before: {os.getloadavg()}")
    print(f"{config.model.preset} {config.model.n_layer}L/{config.model.n_embd}C seq {config.seq_len} batch {config.micro_batch}")
    print(f"{config.dtype}, {config.allocator}, {config.threads} threads, {config.warmup_steps} warm-up + {config.steps} steps")
    seen: dict[bool, list[tuple[float, float]]] = {False: [], True: []}
    for i in range(args.rounds):
        for compiled in (False, True):
            warmup_s, step_s = measure(config, compiled)
            seen[compiled].append((warmup_s, step_s))
            name = "compiled" if compiled else "eager"
            print(f"round {i + 1} {name:>8}: warm-up {warmup_s:7.1f} s · step {step_s:6.3f} s", flush=True)
    (we, se), (wc, sc) = (medians(seen[False]), medians(seen[True]))
    eager_total, compiled_total = we + config.steps * se, wc + config.steps * sc
    print(f"median warm-up: eager {we:.1f} s, compiled {wc:.1f} s (compilation: {wc - we:+.1f} s)")
    print(f"median step: eager {se:.3f} s, compiled {sc:.3f} s ({se / sc:.2f}x)")
    print(f"a default run ({runs} steps): eager {eager_total:.1f} s, compiled {compiled_total:.1f} s")
    if sc < se:
        print(f"compiling breaks even after {(wc - we) / (se - sc):,.0f} measured steps")
    else:
        print("compiled steps are not faster: compiling never pays for itself at this shape")
    print(f"verdict: compile {'pays' if compiled_total < eager_total else 'does not pay'} for itself in a default-length run")
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
