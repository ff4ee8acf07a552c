"""The figures the docs quote about the reference set and the estimate's order (docs/methodology.md's held-out
tables, benchmarks/README.md's H200 figures) are the figures the code computes now."""

from __future__ import annotations

import re

from test_docs import assert_quoted, text_of


def test_the_orders_held_out_tables_are_the_codes() -> None:
    """docs/methodology.md's two tables (transfers on one GPU, GPUs held out) are holdout.py's stored tables, and
    the bands under them are the widths the code uses."""
    import math

    from gptbench.predict.holdout import GPUS_HELD_OUT, TRANSFERS, gpu_width, transfer_width

    doc = text_of("docs/methodology.md")
    section = doc[doc.index("## The order every estimate follows") : doc.index("## How projections are made")]
    quoted = re.findall(r"\| ×(\d\.\d\d) \|\n", section)
    assert quoted == [f"{math.exp(t.error):.2f}" for t in (*TRANSFERS, *GPUS_HELD_OUT)]
    for width in (transfer_width(False), transfer_width(True), gpu_width()):
        assert_quoted(f"ln {width:.3f}", "docs/methodology.md")
        assert_quoted(f"×{math.exp(-width):.2f} to ×{math.exp(width):.2f}", "docs/methodology.md")


def test_benchmarks_readme_projection_and_memory_figures_are_the_codes() -> None:
    """benchmarks/README.md's roofline and memory figures for the H200 reference runs, as the code computes them."""
    import math

    from gptbench.hardware.specs import find_gpu
    from gptbench.predict.calibration import projected_per_gpu, workload_from_config
    from gptbench.predict.projection import EFFICIENCIES, project
    from gptbench.predict.reference import REFERENCE_DIR, reference_points
    from gptbench.predict.workload import CONTEXT_GB, memory_estimate_gb
    from gptbench.reports.store import load_report

    doc = "benchmarks/README.md"
    default, batch = (p for p in reference_points() if p.measured_by == "gptbench")
    rates = [projected_per_gpu(p, EFFICIENCIES) for p in (default, batch)]
    ratios = [r / p.tokens_per_sec for r, p in zip(rates, (default, batch), strict=True)]
    assert_quoted(f"it projects {rates[0]:,.0f}\nand {rates[1]:,.0f} tok/s for the default run and batch 64, ×{ratios[0]:.2f} and"
                  f" ×{ratios[1]:.2f} of the measurements (ln errors {math.log(ratios[0]):+.3f} and\n"
                  f"{math.log(ratios[1]):+.3f}", doc)  # fmt: skip
    chapter5 = load_report(REFERENCE_DIR / "20261204-180219_vm_nvidia-h200_chapter5.json").runs[0]
    projected = project(workload_from_config(chapter5.config), find_gpu("h200")).tokens_per_sec
    measured = chapter5.result.tokens_per_sec or 0.0
    assert_quoted(f"projected {projected:,.0f} against {measured:,.0f}\nmeasured (×{projected / measured:.2f})", doc)
    memory = [memory_estimate_gb(p.workload) - CONTEXT_GB for p in (default, batch)]
    assert_quoted(f"estimates {memory[0]:.1f} GB against {default.reserved_gb:.2f} GB\nreserved at batch 16 and"
                  f" {memory[1]:.1f} against {batch.reserved_gb:.1f} GB at batch 64", doc)  # fmt: skip
