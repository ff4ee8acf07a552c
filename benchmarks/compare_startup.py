"""How fast `gptbench compare` answers, against the bare CLI start (`gptbench --help`) measured in the same run.

    python benchmarks/compare_startup.py [FOLDER]     # default: three made-up reports in a temporary folder

Prints the median wall time of each command over several runs, the ratio, what pandas' import costs inside
`compare`, and whether torch was imported (it must not be).
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPEATS = 7


def wall_s(args: list[str]) -> float:
    """Median seconds for `python -m gptbench ARGS`, a fresh interpreter each time."""
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "gptbench", *args], check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def import_times_us(args: list[str]) -> dict[str, int]:
    """Cumulative import microseconds per top-level module, from -X importtime."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "gptbench", *args], capture_output=True, text=True)
    cumulative: dict[str, int] = {}
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            _, cum, name = (part.strip() for part in line[len("import time:") :].split("|"))
            if cum.isdigit() and not name.startswith(" "):
                cumulative[name] = max(cumulative.get(name, 0), int(cum))
    return cumulative


def main() -> None:
    if len(sys.argv) > 1:
        folder = Path(sys.argv[1])
    else:
        sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
        from report_fixtures import write_all  # made-up reports: timing only, never shown as measurements

        folder = Path(tempfile.mkdtemp(prefix="gptbench-compare-"))
        write_all(folder)
    reports = len(list(folder.glob("*.json")))
    base = wall_s(["--help"])
    compare = wall_s(["compare", str(folder)])
    imports = import_times_us(["compare", str(folder)])
    print(f"python {sys.version.split()[0]} · {reports} reports in {folder}")
    print(f"gptbench --help          {base:.3f} s  (median of {REPEATS}: interpreter + typer + rich)")
    print(f"gptbench compare FOLDER  {compare:.3f} s  ({compare / base:.2f}× the bare CLI start)")
    print(f"  of which pandas import {imports.get('pandas', 0) / 1e6:.3f} s; torch imported: {'torch' in imports}")


if __name__ == "__main__":
    main()
