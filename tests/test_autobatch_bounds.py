"""Issue 23: the batch search never reaches the kernel's OOM killer. It predicts a probe's memory before starting it,
caps each probe's process a little above the bound (an allocation past it comes back as `oom`), and stops growing
when a probe's step is too slow. Pure planning on recorded probe points; the real tiny model for the cap."""

from __future__ import annotations

from rich.console import Console

from gptbench.bench.config import BenchConfig, RunOptions, resolve_config
from gptbench.studies import autobatch
from gptbench.studies.autobatch import (
    CAP_MARGIN_GB,
    AutoBatch,
    Probe,
    ProbeLimits,
    find_largest,
    probe,
    probe_limits,
    search_bounds,
)
from gptbench.studies.batchplan import fit_memory, predicted_over, prior_per_sample_gb
from gptbench.views.tables import probes_table

TINY = resolve_config(RunOptions(device="cpu", model="tiny", seq_len=128, steps=1, warmup_steps=1))
# Issue 23's probes on this 2-core VM (tiny, seq 128, bf16 autocast): 6.19 GB at batch 64, 12.04 GB at 128. A line
# through them stands in for the machine, so that the planning is checked without running anything.
SLOPE_GB = (12.04 - 6.19) / 64
FIXED_GB = 6.19 - SLOPE_GB * 64


def recorded(step_time_s: float = 0.1) -> tuple[list[int], autobatch.ProbeFn]:
    """A probe that returns the recorded line's memory, and the batches it was started at."""
    started: list[int] = []

    def run_probe(config: BenchConfig, b: int, bound_gb: float, limits: ProbeLimits) -> Probe:
        started.append(b)
        used = FIXED_GB + SLOPE_GB * b
        fits = used <= bound_gb
        return Probe(b, fits, used, "fits" if fits else "over the bound", step_time_s=step_time_s)

    return started, run_probe


def test_a_line_through_the_two_largest_probes_predicts_the_next() -> None:
    line = fit_memory([(1, 0.40), (32, 3.10), (64, 6.19)], prior_per_sample=None)
    assert line is not None and "32 and 64" in line.basis
    assert abs(line.predict_gb(128) - (6.19 + 2 * (6.19 - 3.10))) < 1e-9
    # One probe: the projection's slope through it; flat noise at tiny batches also falls back on the prior.
    assert fit_memory([(1, 0.40)], 0.1).predict_gb(3) == 0.40 + 2 * 0.1
    assert fit_memory([(1, 0.40), (2, 0.39)], 0.1).per_sample_gb == 0.1
    assert fit_memory([(1, 0.40)], None) is None and fit_memory([], 0.1) is None
    assert predicted_over(128, [(32, 3.10), (64, 6.19)], None, 6.3) is not None
    assert predicted_over(64, [(16, 1.6), (32, 3.10)], None, 6.3) is None


def test_the_projection_prior_is_a_plausible_slope() -> None:
    assert 0 < prior_per_sample_gb(TINY) < 1


def test_no_probe_predicted_over_the_bound_is_started() -> None:
    started, run_probe = recorded()
    bound = 7 * 0.9  # --memory-limit 7GB less the default 10% headroom
    largest, probes = find_largest(TINY, bound, 1024, run_probe=run_probe)
    assert largest == 64  # 6.19 GB; 72 would need 6.92
    assert 128 not in started  # the 12.04 GB probe is never run
    skipped = [p for p in probes if not p.ran]
    assert skipped and all(p.predicted_gb > bound and "not run: predicted" in p.why for p in skipped)
    assert all(FIXED_GB + SLOPE_GB * b <= bound for b in started)  # with a linear machine, no probe ran over


def test_a_probe_that_runs_out_of_memory_is_a_miss_and_the_search_goes_on() -> None:
    started: list[int] = []

    def run_probe(config: BenchConfig, b: int, bound_gb: float, limits: ProbeLimits) -> Probe:
        started.append(b)
        if b >= 24:  # the cap, where the line said it would fit
            return Probe(b, False, None, "oom (the probe's 3.00 GB data cap): can't allocate memory", status="oom")
        return Probe(b, True, 0.3 + 0.05 * b, "fits")

    largest, probes = find_largest(TINY, 5.0, 1024, run_probe=run_probe)
    assert largest == 16 and started == [1, 2, 4, 8, 16, 32, 24]
    assert [p.status for p in probes if p.micro_batch == 32] == ["oom"]


def test_a_slow_step_stops_the_growth_and_the_table_says_so() -> None:
    started: list[int] = []

    def run_probe(config: BenchConfig, b: int, bound_gb: float, limits: ProbeLimits) -> Probe:
        started.append(b)
        slow = b >= 4  # what `probe` marks when the step is over limits.step_limit_s
        why = "fits; its step took 12.0 s, over the 10 s probe step limit: stopped growing" if slow else "fits"
        return Probe(b, True, 0.3 + 0.05 * b, why, step_time_s=12.0 if slow else 1.0, slow=slow)

    limits = ProbeLimits(None, 10.0)
    largest, probes = find_largest(TINY, 100.0, 1024, limits=limits, run_probe=run_probe)
    assert largest == 4 and started == [1, 2, 4]
    console = Console(width=250, record=True)
    console.print(probes_table(AutoBatch(100.0, "test", probes, largest, [], limits)))
    text = console.export_text()
    assert "stopped growing" in text and "stops growing past a 10 s step" in text


def test_probe_limits_are_for_host_runs_with_a_stated_margin() -> None:
    assert probe_limits("cuda:0", 70.0) == ProbeLimits(70.0, None, host=False)  # the caching allocator's cap, exact
    assert probe_limits("mps", 20.0) == ProbeLimits(None, None)
    limits = probe_limits("cpu", 6.3)
    assert limits.data_limit_gb == 6.3 + CAP_MARGIN_GB and limits.step_limit_s == 10.0
    assert probe_limits("cpu", 40.0).data_limit_gb == 42.0  # 5% of a large bound


def test_the_cap_named_is_the_stricter_of_the_margin_and_an_outer_limit(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(autobatch, "_hard_data_limit_gb", lambda: 10.0)  # run under `prlimit --data=10000000000`
    assert probe_limits("cpu", 20.79).data_limit_gb == 10.0
    assert probe_limits("cpu", 6.3).data_limit_gb == 6.8


def test_an_allocation_past_the_cap_comes_back_as_oom_with_the_reason() -> None:
    # The tiny model at batch 32 needs about 3 GB on this VM; a 1 GB cap stops it inside the probe's own process.
    p = probe(TINY, 32, bound_gb=100.0, limits=ProbeLimits(1.0, None))
    assert p.status == "oom" and not p.fits
    assert "1.00 GB data cap" in p.why and "allocate" in p.why.lower()


def test_a_search_on_a_small_fake_host_keeps_every_probe_within_the_bound(monkeypatch) -> None:  # noqa: ANN001
    # A host with 1 GB available: the tiny model needs about 0.5 GB at batch 1 and 0.2 GB more per sample at seq 128
    # here, so the search stops after three or four probes (each a process start: seconds on a loaded machine).
    monkeypatch.setattr(autobatch, "_available_host_gb", lambda: 1.0)
    bound, source, limits = search_bounds("cpu", None, 0.1, 8, 10.0)
    assert "available host memory 1.0 GB" in source
    largest, probes = find_largest(TINY, bound, 8, limits=limits)
    ran = [p for p in probes if p.ran]
    assert largest >= 2 and all(p.status == "ok" for p in ran)
    # A probe may pass the bound by what the predictor missed, never past the memory the host has: the cap is
    # bound + margin (1.4 GB) only where that much is available; here it is the 1.0 GB available.
    assert all(p.peak_gb <= 1.0 for p in ran)
    assert any(not p.ran for p in probes)  # the batch that would not fit was predicted, not run


def test_a_stricter_data_limit_set_outside_is_kept() -> None:
    """A probe started under a lower hard RLIMIT_DATA (a CI runner's, prlimit's) keeps it: raising it would fail."""
    import subprocess
    import sys

    code = (
        "import resource; from gptbench.bench.worker import cap_data;"
        "resource.setrlimit(resource.RLIMIT_DATA, (3 * 10**9, 3 * 10**9)); cap_data(5 * 10**9);"
        "print(resource.getrlimit(resource.RLIMIT_DATA))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "(3000000000, 3000000000)"


def test_the_prior_knows_checkpointing_shrinks_memory_per_sample() -> None:
    """`--batch auto --activation-checkpointing` predicts its probes with recomputation's smaller slope."""
    plain = resolve_config(RunOptions(device="cpu", model="124m"))
    recomputed = resolve_config(RunOptions(device="cpu", model="124m", activation_checkpointing=True))
    assert prior_per_sample_gb(recomputed) < prior_per_sample_gb(plain)
