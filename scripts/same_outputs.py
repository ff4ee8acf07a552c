"""A fixed set of commands whose output a refactor must not change: `--help` of every command, `estimate` in its
main forms, `plan` as a table and as JSON, and `compare` with its exports, all on a fixed copy of the shipped CPU report.

    python scripts/same_outputs.py --save DIR     # before the change
    python scripts/same_outputs.py --check DIR    # after it: lists every command whose output differs, exit 1 if any

Each command runs in a fresh process from the checkout, in a fixed terminal width, from a scratch folder that holds
only the copied report, so nothing depends on this machine's own reports.
"""

from __future__ import annotations

import argparse
import difflib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REPORT = "cpu.json"
COMMANDS = [
    ["--help"],
    *[[c, "--help"] for c in ("run", "sweep", "ablate", "peak", "suite", "doctor", "chapter5", "estimate", "compare", "prepare")],
    ["estimate", "--gpu", "h100-sxm"],
    ["estimate", "--gpu", "h100-sxm", "--json"],
    ["estimate", "--gpu", "a100", "--gpus", "8", "--price", "1.29", "--tokens", "10e9"],
    ["estimate", "--gpu", "rtx4090", "--model", "book-124m", "--batch", "8"],
    ["estimate", "--gpu", "mi300x", "--json"],
    ["estimate", "--gpu", "h100-sxm", "--model", "1558m", "--batch", "16"],
    ["estimate", "--gpu", "h100-sxm", "--explain"],
    ["estimate", "--catalog"],
    ["estimate", "--catalog", "--json"],
    ["estimate", "--tokens-per-sec", "100000", "--price", "1.29", "--tokens", "chinchilla"],
    ["estimate", "--report", REPORT],
    ["estimate", "--report", REPORT, "--json", "--kwh-price", "0.3"],
    ["estimate", "--report", REPORT, "--explain"],
    ["estimate", "--reports-dir", "."],
    ["estimate", "--gpu", "nosuchgpu"],
    ["estimate", "--tokens", "-3"],
    ["compare", REPORT],
    ["compare", REPORT, "--json"],
    ["compare", REPORT, "--price", "1.29"],
    ["compare", REPORT, "--csv", "out.csv", "--markdown", "out.md"],
    ["compare", "missing.json"],
    ["plan", "--help"],
    ["plan"],
    ["plan", "--json"],
    ["plan", "--max-hours", "4", "--budget", "100"],
    ["plan", "--max-hours", "4", "--budget", "100", "--json"],
    ["plan", "--gpu", "a100", "--data", "shards", "--json"],
    ["plan", "--gpu", "h100-sxm", "--gpus", "8", "--price", "2.5", "--json"],
]


def run_all() -> dict[str, str]:
    """Every command's exit code, stdout and stderr (and the files an export wrote), by command line."""
    shipped = sorted((ROOT / "reports").rglob("*.json"))[0]
    env = {**os.environ, "COLUMNS": "120", "TERM": "dumb", "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    results = {}
    for cmd in COMMANDS:
        with tempfile.TemporaryDirectory() as scratch:
            shutil.copy(shipped, Path(scratch) / REPORT)
            os.utime(Path(scratch) / REPORT, (0, 0))
            proc = subprocess.run([sys.executable, "-m", "gptbench", *cmd], cwd=scratch, env=env, capture_output=True, text=True)
            text = f"exit {proc.returncode}\n--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}"
            for name in ("out.csv", "out.md"):
                if (Path(scratch) / name).exists():
                    text += f"--- {name}\n{(Path(scratch) / name).read_text()}"
            results[" ".join(cmd)] = text.replace(scratch, "<scratch>")
    return results


def file_name(cmd: str) -> str:
    return hashlib.sha1(cmd.encode()).hexdigest()[:12] + ".txt"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--save", type=Path, help="write every command's output into this folder")
    mode.add_argument("--check", type=Path, help="compare every command's output with a folder written by --save")
    args = parser.parse_args()
    results = run_all()
    if args.save:
        args.save.mkdir(parents=True, exist_ok=True)
        for cmd, text in results.items():
            (args.save / file_name(cmd)).write_text(f"$ gptbench {cmd}\n{text}")
        print(f"saved {len(results)} outputs in {args.save}")
        return 0
    differ = 0
    for cmd, text in results.items():
        before = (args.check / file_name(cmd)).read_text().split("\n", 1)[1]
        if before != text:
            differ += 1
            print(f"DIFFERS: gptbench {cmd}")
            sys.stdout.writelines(list(difflib.unified_diff(before.splitlines(True), text.splitlines(True), n=1))[:40])
    print(f"{len(results) - differ} of {len(results)} commands print the same output" + (f"; {differ} differ" if differ else ""))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
