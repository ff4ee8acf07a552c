"""Is gptbench's default CPU run as fast as the CPU allows? Against a plain loop, and against PyTorch's own launcher.

Alternates, round by round, three contenders, each in a fresh process of one process tree:
  gptbench   `python -m gptbench run --device cpu ...` with its defaults (it preloads tcmalloc itself, sets threads)
  plain      the same model, batch, sequence and autocast dtype in a plain PyTorch loop, with the interpreter's
             defaults (glibc malloc, torch's default threads, torch's default AdamW)
  tuned      that plain loop under `python -m torch.backends.xeon.run_cpu` (allocator preload, OMP threads on the
             physical cores, core binding). The launcher only looks for an unversioned libtcmalloc.so
             (torch/backends/xeon/run_cpu.py, `add_lib_preload`), which Debian's runtime package does not install,
             so this script shows it the installed library through $VIRTUAL_ENV/lib, one of the folders it searches.
Prints median tokens/s of each, and gptbench ÷ plain and gptbench ÷ tuned (of the medians, and round by round),
with the load average.

    python benchmarks/cpu_vs_plain_loop.py             # gptbench's default CPU run: 124M, seq 1024, batch 1
    python benchmarks/cpu_vs_plain_loop.py --quick     # 4 layers, 256 wide, seq 256, batch 8: a couple of minutes
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
QUICK = ["--model", "124m", "--n-layer", "4", "--n-head", "4", "--n-embd", "256", "--seq", "256", "--batch", "8"]
CLEAN = ("LD_PRELOAD", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "GPTBENCH_ALLOCATOR_REEXEC", "KMP_AFFINITY", "KMP_BLOCKTIME")


def shape_args(quick: bool) -> list[str]:
    return QUICK if quick else []


def parse_shape(shape: list[str]) -> argparse.Namespace:
    """The shape options this script passes on (the subset of `gptbench run`'s it uses)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="124m")
    for flag in ("--n-layer", "--n-head", "--n-embd", "--seq", "--batch"):
        parser.add_argument(flag, type=int)
    return parser.parse_args(shape)


def plain_loop(shape: list[str], steps: int, warmup: int) -> dict:
    """The child: a plain training loop of gptbench's model at gptbench's default shape and dtype; tokens/s per step."""
    import torch

    from gptbench.bench.config import RunOptions, resolve_config
    from gptbench.hardware.allocator import allocator_in_use
    from gptbench.model.gpt import GPT

    a = parse_shape(shape)
    # gptbench's shape and dtype for these options; nothing of its runtime (allocator, threads) is applied here
    options = RunOptions(device="cpu", model=a.model, n_layer=a.n_layer, n_head=a.n_head, n_embd=a.n_embd)
    config = resolve_config(replace(options, seq_len=a.seq, micro_batch=a.batch))
    torch.manual_seed(0)
    model = GPT(config.model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=6e-4)
    x = torch.randint(0, 50257, (config.micro_batch, config.seq_len))
    y = torch.randint(0, 50257, (config.micro_batch, config.seq_len))
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}.get(config.dtype)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype, enabled=dtype is not None):
            loss = model(x, y)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    tokens = config.micro_batch * config.seq_len
    rate = statistics.median(tokens / t for t in times)
    return {"tokens_per_sec": rate, "allocator": allocator_in_use()[0], "threads": torch.get_num_threads(), "dtype": config.dtype}


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEAN}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return env


def run_gptbench(shape: list[str], steps: int, warmup: int, out: Path) -> dict:
    cmd = [sys.executable, "-m", "gptbench", "run", "--device", "cpu", *shape, "--steps", str(steps), "--warmup", str(warmup)]
    done = subprocess.run(
        [*cmd, "--json", "--out", str(out)], capture_output=True, text=True, env=clean_env(), cwd=ROOT, check=True
    )
    report = json.loads(done.stdout)
    run = report["runs"][0]
    c = run["config"]
    return {
        "tokens_per_sec": run["result"]["tokens_per_sec"],
        "allocator": c["allocator"],
        "threads": c["threads"],
        "dtype": c["dtype"],
    }


def run_child(shape: list[str], steps: int, warmup: int, launcher: list[str], env: dict[str, str]) -> dict:
    cmd = [*launcher, str(Path(__file__).resolve()), "--child", "--steps", str(steps), "--warmup", str(warmup)]
    done = subprocess.run([*cmd, "--", *shape], capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def launcher_env(tmp: Path) -> dict[str, str]:
    """The environment under which torch's launcher finds tcmalloc: $VIRTUAL_ENV/lib/libtcmalloc.so -> the installed one."""
    from gptbench.hardware.allocator import find_library

    env = clean_env()
    library = find_library("tcmalloc")
    if library is not None:
        (tmp / "lib").mkdir(exist_ok=True)
        link = tmp / "lib" / "libtcmalloc.so"
        if not link.exists():
            link.symlink_to(library)
        env["VIRTUAL_ENV"] = str(tmp)
    return env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="4 layers, 256 wide, seq 256, batch 8 (instead of 124M)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8, help="measured steps per run (gptbench's CPU default: 8)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("shape", nargs="*", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(plain_loop(args.shape, args.steps, args.warmup)))
        return
    shape = shape_args(args.quick)
    launcher = [sys.executable, "-m", "torch.backends.xeon.run_cpu", "--disable-iomp"]  # no Intel OpenMP here
    rates: dict[str, list[float]] = {"gptbench": [], "plain": [], "tuned": []}
    print(f"load average before: {os.getloadavg()}; shape: {' '.join(shape) or 'gptbench CPU default (124m)'}")
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        for i in range(args.rounds):
            results = {
                "plain": run_child(shape, args.steps, args.warmup, [sys.executable], clean_env()),
                "gptbench": run_gptbench(shape, args.steps, args.warmup, tmp / "reports"),
                "tuned": run_child(shape, args.steps, args.warmup, launcher, launcher_env(tmp)),
            }
            for name, r in results.items():
                rates[name].append(r["tokens_per_sec"])
                setup = f"{r['allocator']}, {r['threads']} threads, {r['dtype']}"
                print(f"round {i + 1} {name:>9}: {r['tokens_per_sec']:9,.0f} tok/s  ({setup})", flush=True)
    med = {k: statistics.median(v) for k, v in rates.items()}
    print(f"median tok/s: gptbench {med['gptbench']:,.0f} · plain {med['plain']:,.0f} · tuned {med['tuned']:,.0f}")
    for other, target in (("plain", 1.2), ("tuned", 1.0)):
        # Within a round the three ran back to back, so a round's ratio is steadier than the ratio of medians
        # when the machine's load drifts between rounds.
        paired = [g / o for g, o in zip(rates["gptbench"], rates[other], strict=True)]
        rounds = ", ".join(f"{r:.2f}" for r in paired)
        print(
            f"gptbench / {other} loop: {med['gptbench'] / med[other]:.2f}x of medians; per round {rounds},"
            f" median {statistics.median(paired):.2f}x   (target: >= {target}x)"
        )
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()
