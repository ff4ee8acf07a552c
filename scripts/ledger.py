"""The prediction ledger, benchmarks/predictions.csv (gptbench/predict/ledger.py; docs/methodology.md says how it is
judged).

    python scripts/ledger.py register --gpu h100-sxm --batch 16   # this commit's estimate, before any measurement
    python scripts/ledger.py record reports/REPORT.json           # a measurement landed: its error beside each row
    python scripts/ledger.py check                                # rows, times, errors, and git history: unedited

`register` writes what `gptbench estimate --json` answers at this checkout's commit for gptbench's default step:
tokens/s and its band, and its memory figure (the device's memory in use as NVML reports it) with the held-out bound
as its band. Run it from a clean checkout of main so the commit names the model that made the prediction. Exit 1
when `check` finds a problem, 2 on bad input.
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gptbench.errors import GptbenchError  # noqa: E402  (the checkout's package, after the path is set)
from gptbench.predict.ledger import (  # noqa: E402
    Entry,
    check,
    history_problems,
    read_ledger,
    record,
    write_ledger,
)
from gptbench.predict.validation import HELD_OUT_BOUND  # noqa: E402
from gptbench.reports.store import load_report  # noqa: E402

LEDGER = ROOT / "benchmarks" / "predictions.csv"
LEDGER_PATH = "benchmarks/predictions.csv"  # inside the repository, for git show


def git(*args: str) -> subprocess.CompletedProcess[str]:
    """A git command in the checkout, its output as text; never raises on a non-zero exit."""
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False)


def is_ancestor(a: str, b: str) -> bool:
    """Whether commit `a` is `b` or one of its ancestors (False when either is not in this clone)."""
    return git("merge-base", "--is-ancestor", a, b).returncode == 0


def versions(path: str = LEDGER_PATH) -> list[tuple[str, str, str]]:
    """(commit, commit time, the ledger's text at it) for every commit that changed the ledger, oldest first."""
    log = git("log", "--reverse", "--format=%H %cI", "--", path).stdout.split()
    pairs = zip(log[::2], log[1::2], strict=True)
    return [(c, when, git("show", f"{c}:{path}").stdout) for c, when in pairs]


def estimate_json(gpu: str, batch: int, model: str, seq: int) -> dict:
    """What `gptbench estimate --json` answers for gptbench's default step (bf16, compiled, sdpa, fused AdamW)."""
    command = [sys.executable, "-m", "gptbench", "estimate", "--gpu", gpu, "--batch", str(batch), "--model", model]
    command += ["--seq", str(seq), "--dtype", "bf16", "--compile", "--attention", "sdpa", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise GptbenchError(f"estimate failed: {done.stdout.strip() or done.stderr.strip()}")
    return json.loads(done.stdout)


def register(args: argparse.Namespace) -> int:
    """Append this commit's tokens/s and reserved-memory predictions for one GPU and micro-batch."""
    if git("status", "--porcelain", "--", "gptbench").stdout.strip():
        raise GptbenchError("gptbench/ has uncommitted changes: commit first, so the row names the model that predicted")
    commit = git("rev-parse", "HEAD").stdout.strip()
    answer = estimate_json(args.gpu, args.batch, args.model, args.seq)
    t = answer["throughput"]
    config = f"model={args.model} seq_len={args.seq} micro_batch={args.batch} grad_accum=1 world_size=1 dtype=bf16"
    config += " compile=true attention=sdpa fused_adamw=true"
    command = f"gptbench estimate --gpu {args.gpu} --model {args.model} --seq {args.seq} --batch {args.batch} --json"
    now = datetime.now(timezone.utc).replace(microsecond=0).isoformat()
    entries = read_ledger(args.ledger)
    stem = f"{args.gpu}-{args.model}-s{args.seq}-b{args.batch}-{commit[:7]}"
    memory = t["memory_estimate_gb"]
    memory_how = next((n for n in t.get("notes", []) if n.startswith("memory: ")), "memory: the memory model")
    low, high = math.exp(-HELD_OUT_BOUND), math.exp(HELD_OUT_BOUND)
    new = [
        Entry(f"{stem}-tok", now, commit, args.gpu, config, "tokens_per_sec", round(t["tokens_per_sec"]),
              round(t["tokens_per_sec_p10"]), round(t["tokens_per_sec_p90"]),
              f"{command}: {t['basis']} ({t['source']}; {t['evidence']}); band: its {t['range_basis']}", note=args.note),
        Entry(f"{stem}-mem", now, commit, args.gpu, config, "device_used_gb", round(memory, 2),
              round(memory * low, 2), round(memory * high, 2),
              f"{command}: memory_estimate_gb ({memory_how}; the CUDA context included, so NVML's device_used_gb); "
              f"band: x{low:.2f} to x{high:.2f}, the held-out bound of the tokens/s projection "
              "(validation.HELD_OUT_BOUND), no memory band validated",
              note=args.note),
    ]  # fmt: skip
    if {e.id for e in entries} & {e.id for e in new}:
        raise GptbenchError(f"{stem} is registered already at this commit")
    write_ledger(args.ledger, [*entries, *new])
    for e in new:
        print(f"registered {e.id}: {e.predicted:,g} ({e.band_low:,g}-{e.band_high:,g})")
    return 0


def record_report(args: argparse.Namespace) -> int:
    """Fill the measured columns of every row the report measures."""
    entries = read_ledger(args.ledger)
    report = load_report(args.report)
    name = str(Path(args.report).resolve().relative_to(ROOT)) if Path(args.report).resolve().is_relative_to(ROOT) else args.report
    updated, filled = record(entries, report, name)
    if not filled:
        print(f"{args.report}: measures no unmeasured row of {args.ledger}")
        return 0
    write_ledger(args.ledger, updated)
    for e in filled:
        print(f"{e.id}: predicted {e.predicted:,g}, measured {e.measured:,g}, ln(predicted/measured) {e.ln_error:+.3f}: {e.note}")
    return 0


def check_ledger(args: argparse.Namespace) -> int:
    """Every row's own checks, then the history's (skipping what this clone cannot see); exit 1 on a problem."""
    entries = read_ledger(args.ledger)
    problems = check(entries)
    history, skipped = history_problems(entries, versions(), is_ancestor)
    for line in skipped:
        print(f"skipped: {line}")
    for line in problems + history:
        print(f"problem: {line}")
    print(f"{len(entries)} rows, {len(problems + history)} problems")
    return 1 if problems or history else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ledger", type=Path, default=LEDGER)
    sub = parser.add_subparsers(dest="command", required=True)
    reg = sub.add_parser("register", help="this commit's estimate for a GPU and micro-batch")
    reg.add_argument("--gpu", required=True)
    reg.add_argument("--batch", type=int, default=16)
    reg.add_argument("--model", default="124m")
    reg.add_argument("--seq", type=int, default=1024)
    reg.add_argument("--note", default="")
    rec = sub.add_parser("record", help="a report's measurements beside the rows it measures")
    rec.add_argument("report")
    sub.add_parser("check", help="the rows, and their history in git")
    args = parser.parse_args(argv)
    try:
        return {"register": register, "record": record_report, "check": check_ledger}[args.command](args)
    except GptbenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
