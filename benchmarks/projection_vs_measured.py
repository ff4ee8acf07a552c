"""Does the projection model match what was measured? And does `gptbench estimate` answer in well under a second?

Prints, for every published calibration point (gptbench/predict/calibration.csv) and every run of every report
committed to reports/reference/, the measured tokens/s per GPU, the projected one and their ratio (in-sample: the stored
efficiencies were fitted on these points), plus the memory estimate against the reserved memory where the source
gives it. Then the held-out tables: each point projected by a model fitted without it (leave one point out) and
without every point of its source (leave one source out, the one the band uses: 12 of the 19 rows come from one
script's log, and holding out one of them leaves its 11 siblings to vouch for it). Errors are ln(projected / measured).
Then times `gptbench estimate` against the CLI's own start-up (`gptbench --help`) in the same run.

    python benchmarks/projection_vs_measured.py               # the comparison, leave-one-out and the timing
    python benchmarks/projection_vs_measured.py --fit         # refit (published + committed GPU reports): prints the
                                                              # constants for projection.py and validation.py
    python benchmarks/projection_vs_measured.py --holdout     # the estimate order's bands: transfers on one GPU and
                                                              # GPUs held out with their sources (holdout.py's constants)
    python benchmarks/projection_vs_measured.py --reports DIR --no-timing
"""

from __future__ import annotations

import argparse
import math
import statistics
import subprocess
import sys
import time
from pathlib import Path

from gptbench.predict.calibration import CalibrationPoint, fit, projected_per_gpu, published_points, report_points
from gptbench.predict.holdout import gpu_width, gpus_held_out, transfer_width, transfers
from gptbench.predict.projection import EFFICIENCIES
from gptbench.predict.reference import REFERENCE_DIR
from gptbench.predict.validation import EXCEPTIONS, HELD_OUT_BOUND, HeldOut, leave_one_out, leave_one_source_out
from gptbench.predict.workload import CONTEXT_GB, memory_estimate_gb

ROOT = Path(__file__).resolve().parent.parent


def compare(points: list[CalibrationPoint], title: str) -> None:
    """One line per point: measured and projected tokens/s per GPU, their ratio, and memory where known."""
    print(f"\n{title}")
    print(f"{'point':38s} {'gpu':16s} {'measured/GPU':>13s} {'projected/GPU':>14s} {'ratio':>6s}  memory est. vs reserved")
    for p in points:
        projected = projected_per_gpu(p, EFFICIENCIES)
        memory = ""
        if p.reserved_gb:
            memory = f"{memory_estimate_gb(p.workload) - CONTEXT_GB:6.2f} GB vs {p.reserved_gb:6.2f} GB"
        print(
            f"{p.name[:38]:38s} {p.gpu:16s} {p.tokens_per_sec_per_gpu:13,.0f} {projected:14,.0f}"
            f" {projected / p.tokens_per_sec_per_gpu:6.2f}  {memory}"
        )


def print_held_out(held: list[HeldOut], title: str) -> None:
    """One line per point: measured, projected by a model fitted without it, the error, and that model's efficiencies."""
    print(f"\n{title} (bound: |ln(projected/measured)| <= ln 1.5 = {HELD_OUT_BOUND:.3f}, chosen in advance)")
    head = f"{'point':30s} {'gpu':16s} {'measured/GPU':>13s} {'projected/GPU':>14s} {'ln err':>7s} {'ratio':>6s}"
    print(f"{head}  fitted without it")
    for h in held:
        eff = f"matmul {h.fitted.matmul:.2f}, unaligned {h.fitted.unaligned:.2f}"
        named = "  EXCEPTION (named in validation.py)" if h.name in EXCEPTIONS else "  OUTSIDE THE BOUND"
        flag = "" if abs(h.error) <= HELD_OUT_BOUND else named
        print(
            f"{h.name[:30]:30s} {h.gpu:16s} {h.measured_per_gpu:13,.0f} {h.projected_per_gpu:14,.0f} {h.error:+7.3f}"
            f" {h.projected_per_gpu / h.measured_per_gpu:6.2f}  {eff}{flag}"
        )
    errors = [abs(h.error) for h in held]
    within = sum(1 for e in errors if e <= HELD_OUT_BOUND)
    print(
        f"median |ln error| {statistics.median(errors):.3f} (x{math.exp(statistics.median(errors)):.2f}), worst"
        f" {max(errors):.3f} (x{math.exp(max(errors)):.2f}) over {len(held)} points; {within} within the bound"
    )


def table(held: list[HeldOut]) -> str:
    return "(" + "".join(f"\n    ({h.name!r}, {h.gpu!r}, {h.error:.3f})," for h in held) + "\n)"


def print_holdout(points: list[CalibrationPoint], constants: bool) -> None:
    """The bands of the estimate's order: transfers between configurations on one GPU, and GPUs held out whole."""
    moved, held = transfers(points), gpus_held_out(points)
    print("\ntransfers held out: the target predicted from another point on its GPU by the ratio of a model fitted without it")
    print(f"{'from':38s} {'to':38s} {'gpu':16s} {'ln err':>7s} {'ratio':>6s}  vocabulary")
    for t in moved:
        cross = "alignment differs (leans on the unaligned factor)" if t.unaligned else "same alignment"
        print(f"{t.start[:38]:38s} {t.target[:38]:38s} {t.gpu:16s} {t.error:+7.3f} {math.exp(t.error):6.2f}  {cross}")
    print(f"band: ln {transfer_width(False, moved):.3f} (same alignment), ln {transfer_width(True, moved):.3f} (across it)")
    print("\nGPUs held out: each GPU's points projected by a model fitted without that GPU and without its points' sources")
    print(f"{'point':38s} {'gpu':16s} {'ln err':>7s} {'ratio':>6s}")
    for g in held:
        print(f"{g.point[:38]:38s} {g.gpu:16s} {g.error:+7.3f} {math.exp(g.error):6.2f}")
    print(f"band: ln {gpu_width(held):.3f} (x{math.exp(-gpu_width(held)):.2f} to x{math.exp(gpu_width(held)):.2f})")
    if constants:
        rows = "".join(f"\n    Transfer({t.start!r}, {t.target!r}, {t.gpu!r}, {t.error:.3f}, {t.unaligned}),"for t in moved)
        print(f"\nTRANSFERS: tuple[Transfer, ...] = ({rows}\n)")
        rows = "".join(f"\n    GpuHeldOut({g.point!r}, {g.gpu!r}, {g.error:.3f})," for g in held)
        print(f"GPUS_HELD_OUT: tuple[GpuHeldOut, ...] = ({rows}\n)")


def wall_s(args: list[str], repeats: int) -> float:
    """Median wall-clock seconds of a fresh `python -m gptbench ...` process."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "gptbench", *args], cwd=ROOT, capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reports", type=Path, default=REFERENCE_DIR, help="folder of the reference reports")
    parser.add_argument("--fit", action="store_true", help="refit the efficiencies and print them")
    parser.add_argument("--holdout", action="store_true", help="print holdout.py's tables as constants")
    parser.add_argument("--no-timing", action="store_true", help="skip timing the command")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    published = published_points()
    measured, skipped = report_points(args.reports)
    print(f"efficiencies in use: {EFFICIENCIES}   (every projected figure below is a projection)")
    compare(published, "published measurements (calibration.csv), the points the efficiencies were fitted on")
    if measured:
        compare(measured, f"committed reports in {args.reports}")
    else:
        print(f"\ncommitted reports in {args.reports}: no GPU runs to compare")
    for line in skipped:
        print(f"  skipped: {line}")
    points = published + measured
    by_point, by_source = leave_one_out(points), leave_one_source_out(points)
    print_held_out(by_point, "leave one point out: each point projected by efficiencies fitted on all the others")
    print_held_out(by_source, "leave one source out: a source's points projected by efficiencies fitted on the other sources")
    source_median, point_median = (statistics.median(abs(h.error) for h in held) for held in (by_source, by_point))
    print(
        "\nthe band uses leave-one-source-out, the more honest of the two: median |ln error|"
        f" {source_median:.3f} against {point_median:.3f} leaving one point out"
    )
    if args.fit:
        fitted = fit(points)
        names = tuple(p.name for p in points)
        print(f"\nfitted on {len(names)} points: {fitted}\nCALIBRATED_ON = {names}")
        print(f"LEAVE_ONE_OUT = {table(by_point)}\nLEAVE_ONE_SOURCE_OUT = {table(by_source)}")
    print_holdout(points, args.holdout)
    if not args.no_timing:
        estimate = ["estimate", "--tokens", "10e9", "--tokens-per-sec", "142000", "--price", "1.29"]
        base, est = wall_s(["--help"], args.repeats), wall_s(estimate, args.repeats)
        catalog = wall_s(["estimate", "--tokens", "10e9", "--catalog"], args.repeats)
        print(f"\nmedian wall time over {args.repeats} fresh processes:")
        print(f"  gptbench --help (baseline: interpreter + CLI start-up)  {base:.3f} s")
        print(f"  gptbench estimate --tokens-per-sec ... --price ...     {est:.3f} s  ({est / base:.2f}x baseline)")
        print(f"  gptbench estimate --catalog (projects every offer)     {catalog:.3f} s  ({catalog / base:.2f}x baseline)")


if __name__ == "__main__":
    main()
