"""How fast `gptbench plan` answers for the whole catalog, against the bare CLI start (`gptbench --help`) measured in
the same run.

    python benchmarks/plan_speed.py [REPORTS_DIR]     # default: reports/reference (one report of a machine of yours)

Prints the median wall time of each command over several runs (a fresh interpreter each time), the ratio, the time
inside `make_plan` alone, and whether torch or pandas was imported (neither may be).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from compare_startup import REPEATS, wall_s  # the same timing of a fresh `python -m gptbench ...` (this folder)

ROOT = Path(__file__).resolve().parent.parent


def imported(args: list[str]) -> set[str]:
    """Top-level packages the command imports, from -X importtime."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "gptbench", *args], capture_output=True, text=True)
    return {line.rsplit("|", 1)[-1].strip().split(".")[0] for line in done.stderr.splitlines() if line.startswith("import time:")}


def main() -> None:
    folder = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "reports" / "reference"
    args = ["plan", "--tokens", "10e9", "--max-hours", "4", "--budget", "100", "--reports-dir", str(folder)]
    base = wall_s(["--help"])
    plan = wall_s(args)
    sys.path.insert(0, str(ROOT))
    from gptbench.cloud.plan import PlanRequest, make_plan

    inside = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        options = make_plan(PlanRequest(10e9, max_hours=4, budget_usd=100), folder).options
        inside.append(time.perf_counter() - start)
    modules = imported(args)
    print(f"python {sys.version.split()[0]} · {len(options)} options (the whole catalog + reports in {folder})")
    print(f"gptbench --help   {base:.3f} s  (median of {REPEATS}: interpreter + typer + rich)")
    print(f"gptbench plan     {plan:.3f} s  ({plan / base:.2f}× the bare CLI start)")
    print(f"  make_plan alone {statistics.median(inside):.3f} s (median of {REPEATS}, in-process)")
    print(f"  torch imported: {'torch' in modules}; pandas imported: {'pandas' in modules}")


if __name__ == "__main__":
    main()
