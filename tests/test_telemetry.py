"""Telemetry: the sampler's edges and thread, the summary's arithmetic on a fake NVML, and where the figures show.

The fake NVML plays back canned responses (frames of made-up readings shaped like a datacenter GPU's, not a
measurement) against a clock the test moves, so every figure below is a known answer."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from gptbench.bench.telemetry import CpuReader, GpuReader, TelemetrySampler, reason_names, sampler_for
from gptbench.cli import app
from gptbench.hardware.nvml import nvml_missing_reason
from gptbench.reports.schema import Accelerator, Machine, ModelShape, Report, Run, RunConfig, RunResult, Telemetry
from gptbench.reports.store import load_report, write_report
from gptbench.views.summary import run_warnings, telemetry_rows

FRAME_S = 0.1
IDLE, APP_CLOCKS, POWER_CAP, SW_THERMAL, HW_THERMAL = 0x1, 0x2, 0x4, 0x20, 0x40


class FakeNVMLError(Exception):
    """What pynvml raises, reduced to its message."""


class FakeClock:
    def __init__(self) -> None:
        self.t_s = 0.0

    def __call__(self) -> float:
        return self.t_s


class FakeNvml:
    """An NVML-like object: answers each query from the frame the clock is in; `missing` queries raise Not Supported."""

    NVMLError = FakeNVMLError

    def __init__(self, frames: list[dict[str, int]], clock: FakeClock, missing: tuple[str, ...] = ()) -> None:
        self.frames, self.clock, self.missing = frames, clock, missing
        self.calls: list[str] = []

    def _get(self, key: str) -> int:
        self.calls.append(key)
        if key in self.missing:
            raise FakeNVMLError("Not Supported")
        return self.frames[min(round(self.clock() / FRAME_S), len(self.frames) - 1)][key]

    def nvmlDeviceGetPowerUsage(self, handle: object) -> int:
        return self._get("power_mw")

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: object) -> int:
        return self._get("energy_mj")

    def nvmlDeviceGetClockInfo(self, handle: object, clock: int) -> int:
        return self._get({1: "sm_mhz", 2: "mem_mhz"}[clock])

    def nvmlDeviceGetTemperature(self, handle: object, sensor: int) -> int:
        return self._get("temp_c")

    def nvmlDeviceGetUtilizationRates(self, handle: object) -> SimpleNamespace:
        return SimpleNamespace(gpu=self._get("util_pct"), memory=0)

    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: object) -> int:
        return self._get("reasons")


def frames(n: int = 11, power_w: Any = 300, reasons: Any = 0, energy_w: float = 300.0) -> list[dict[str, int]]:
    """n frames 0.1 s apart; power_w and reasons may be callables of the frame index. The energy counter
    (mJ since boot, starting high as it would) grows at `energy_w` watts."""
    at = lambda v, i: v(i) if callable(v) else v  # noqa: E731
    return [
        {
            "power_mw": int(at(power_w, i) * 1000),
            "energy_mj": 5_000_000_000 + int(energy_w * FRAME_S * 1000 * i),
            "sm_mhz": 1980 - 5 * i,
            "mem_mhz": 2619,
            "temp_c": 60 + i,
            "util_pct": 100 if i else 50,
            "reasons": at(reasons, i),
        }
        for i in range(n)
    ]


def play(nvml: FakeNvml, clock: FakeClock, n: int, tokens: int) -> Telemetry:
    """Sample frames 0..n-1 through the sampler's own entry, sample() and exit; the thread never fires (1 h interval)."""
    sampler = TelemetrySampler([GpuReader(nvml, handle=object())], cpu=None, interval_s=3600, clock=clock)
    with sampler:
        for i in range(1, n - 1):
            clock.t_s = i * FRAME_S
            sampler.sample()
        clock.t_s = (n - 1) * FRAME_S
    return sampler.summary(tokens)


def test_energy_counter_difference_gives_power_and_joules_per_token() -> None:
    clock = FakeClock()
    # Power samples alternate 280/320 W (mean 300), the counter says 310 W: the counter must win.
    t = play(FakeNvml(frames(power_w=lambda i: 280 + 40 * (i % 2), energy_w=310), clock), clock, 11, tokens=15_500)
    assert t.samples == 11 and t.window_s == pytest.approx(1.0) and t.gpus == 1
    assert t.energy_source == "counter" and t.energy_j == pytest.approx(310.0)
    assert t.power_avg_w == pytest.approx(310.0) and t.power_max_w == 320.0
    assert t.joules_per_token == pytest.approx(310.0 / 15_500)
    assert (t.sm_clock_mhz_min, t.sm_clock_mhz_max) == (1930, 1980) and (t.mem_clock_mhz_min, t.mem_clock_mhz_max) == (2619, 2619)
    assert (t.temperature_c_min, t.temperature_c_max) == (60, 70)
    assert t.utilization_gpu_avg == pytest.approx((0.5 + 10 * 1.0) / 11)
    assert t.throttled is False and t.throttle_reasons == [] and t.throttled_fraction == 0
    assert not {k for k in t.unavailable if not k.startswith("cpu")} and t.notes == []


def test_readings_below_the_counters_average_are_explained() -> None:
    """On an H200 the counter gave 714.5 W over 1.05 s while no 1 s-averaged reading passed 691 W: say why."""
    clock = FakeClock()
    t = play(FakeNvml(frames(power_w=lambda i: 600 + 9 * i, energy_w=714.5), clock), clock, 11, tokens=10_000)
    assert t.power_avg_w == pytest.approx(714.5) and t.power_max_w == 690.0
    assert any("averaged over the last second" in note for note in t.notes)


def test_gpu_without_energy_counter_integrates_power_and_says_so() -> None:
    clock = FakeClock()
    nvml = FakeNvml(frames(power_w=lambda i: 100 + 10 * i), clock, missing=("energy_mj",))
    t = play(nvml, clock, 11, tokens=1_000)
    # 100 W rising linearly to 200 W over 1 s: the trapezoids are exact, 150 J.
    assert t.energy_source == "integrated" and t.energy_j == pytest.approx(150.0)
    assert t.power_avg_w == pytest.approx(150.0) and t.power_max_w == 200.0 and t.joules_per_token == pytest.approx(0.15)
    assert "GPU has no energy counter: energy integrated from power samples" in t.notes
    assert "energy_j" not in t.unavailable
    assert nvml.calls.count("energy_mj") == 1  # probed once, then never asked again


def test_throttled_run_names_its_reasons_and_counts_only_costly_ones() -> None:
    clock = FakeClock()
    # Frames 0-4 unthrottled (frame 0 idle), 5-10 thermal slowdown plus power cap: 6 of 11 samples.
    reasons = lambda i: IDLE if i == 0 else 0 if i < 5 else SW_THERMAL | POWER_CAP  # noqa: E731
    t = play(FakeNvml(frames(reasons=reasons), clock), clock, 11, tokens=1)
    assert t.throttled is True and t.throttled_fraction == pytest.approx(6 / 11)
    assert t.throttle_reasons == ["power cap", "thermal slowdown (sw)"] and t.other_clock_reasons == ["gpu idle"]
    run = Run(_config(), RunResult(tokens_per_sec=1.0, telemetry=t))
    (warning,) = run_warnings(run)
    assert "throttled in 55% of the samples (power cap, thermal slowdown (sw))" in warning and "not a fair measurement" in warning


def test_idle_and_application_clocks_are_not_throttling() -> None:
    clock = FakeClock()
    t = play(FakeNvml(frames(reasons=IDLE | APP_CLOCKS), clock), clock, 5, tokens=1)
    assert t.throttled is False and t.throttle_reasons == [] and t.throttled_fraction == 0
    assert t.other_clock_reasons == ["gpu idle", "applications clocks setting"]


def test_power_cap_alone_is_reported_as_running_at_the_limit() -> None:
    clock = FakeClock()
    t = play(FakeNvml(frames(reasons=POWER_CAP), clock), clock, 5, tokens=1)
    (warning,) = run_warnings(Run(_config(), RunResult(tokens_per_sec=1.0, telemetry=t)))
    assert t.throttled is True and "ran at its power limit in 100% of the samples" in warning


def test_reason_bits_decode_by_nvml_values() -> None:
    assert reason_names(0) == []
    assert reason_names(0x8 | 0x40 | 0x80) == ["hw slowdown", "thermal slowdown (hw)", "power brake (hw)"]
    assert reason_names(0x10 | 0x1000) == ["sync boost", "unknown (0x1000)"]


def test_gpu_without_power_or_counter_leaves_nulls_with_reasons() -> None:
    clock = FakeClock()
    t = play(FakeNvml(frames(), clock, missing=("energy_mj", "power_mw", "reasons")), clock, 5, tokens=100)
    assert t.energy_j is t.power_avg_w is t.power_max_w is t.joules_per_token is t.throttled is None
    assert t.unavailable["energy_j"] == "no energy counter (NVML: Not Supported) and no power readings (NVML: Not Supported)"
    assert t.unavailable["power_max_w"] == "no power reading (NVML: Not Supported)"
    assert t.unavailable["throttled"] == "no clock-limit reasons reading (NVML: Not Supported)"
    assert t.sm_clock_mhz_max == 1980  # what the GPU does answer is still kept


def test_no_nvml_is_never_an_error() -> None:
    sampler = sampler_for(SimpleNamespace(type="cpu"), interval_s=0.01)
    with sampler:
        time.sleep(0.03)
    t = sampler.summary(tokens=100)
    assert t.gpus == 0 and t.power_avg_w is None and t.joules_per_token is None and t.throttled is None
    assert t.unavailable["power_avg_w"] == "NVML not available: CPU run (NVML reads NVIDIA GPUs only)"
    assert "MPS device" in sampler_for(SimpleNamespace(type="mps")).no_gpu


def test_missing_driver_reason() -> None:
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError_LibraryNotFound:
        assert nvml_missing_reason() == "NVML not available: no NVIDIA driver (libnvidia-ml not found)"
    else:
        pytest.skip("this machine has an NVIDIA driver")


def test_a_failing_reading_mid_run_costs_one_value_not_the_run() -> None:
    clock = FakeClock()
    nvml = FakeNvml(frames(), clock)
    sampler = TelemetrySampler([GpuReader(nvml, object())], interval_s=3600, clock=clock)
    with sampler:
        nvml.missing = ("temp_c",)
        clock.t_s = 0.1
        sampler.sample()
        nvml.missing = ()
        clock.t_s = 0.2
    t = sampler.summary(tokens=10)
    assert (t.temperature_c_min, t.temperature_c_max) == (60, 62)
    assert "1 NVML readings failed during the run and are missing from their samples" in t.notes


def test_thread_samples_at_about_10_hz_between_exact_edges_and_stops_on_an_exception() -> None:
    """Load-proof: the test waits until the thread has sampled (however slow the machine), then checks that it never
    sampled faster than asked (at most one sample per interval elapsed, plus the first) and that the edges are exact."""
    clock = FakeClock()
    nvml = FakeNvml(frames(), clock)
    sampler = TelemetrySampler([GpuReader(nvml, object())], interval_s=0.02)
    before = time.perf_counter()
    with pytest.raises(ZeroDivisionError), sampler:
        entered = time.perf_counter()
        deadline = entered + 60
        while len(sampler.ticks) < 6 and time.perf_counter() < deadline:  # the entry sample + 5 from the thread
            time.sleep(0.01)
        left = time.perf_counter()
        _ = 1 / 0
    after = time.perf_counter()
    assert sampler._thread is not None and sampler._thread.daemon and not sampler._thread.is_alive()
    ticks = sampler.ticks
    assert before <= ticks[0].t_s <= entered and left <= ticks[-1].t_s <= after  # first and last on the edges
    thread_samples = len(ticks) - 2
    assert 5 <= thread_samples <= (after - entered) / 0.02 + 1
    assert not [t for t in threading.enumerate() if t.name == "gptbench-telemetry"]


def test_cpu_reader_on_a_fake_proc_and_sys(tmp_path: Path) -> None:
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/stat").write_text("cpu  100 0 50 800 50 0 0 0 0 0\ncpu0 1 2 3 4\n")
    (tmp_path / "proc/cpuinfo").write_text("processor\t: 0\ncpu MHz\t\t: 2000.0\nprocessor\t: 1\ncpu MHz\t\t: 3000.0\n")
    cpu = CpuReader(tmp_path, cpus=[0, 1])
    assert cpu.freq_source == "cpuinfo" and cpu.freq_mhz() == 2500.0
    assert cpu.busy_total() == (150, 1000)  # idle + iowait = 850 of 1000
    for c, khz in ((0, 1_200_000), (1, 3_600_000)):
        folder = tmp_path / f"sys/devices/system/cpu/cpu{c}/cpufreq"
        folder.mkdir(parents=True)
        (folder / "scaling_cur_freq").write_text(f"{khz}\n")
    cpu = CpuReader(tmp_path, cpus=[0, 1])
    assert cpu.freq_source == "cpufreq" and cpu.freq_mhz() == 2400.0
    sampler = TelemetrySampler(cpu=cpu, interval_s=3600)
    with sampler:
        (tmp_path / "proc/stat").write_text("cpu  250 0 100 850 50 0 0 0 0 0\n")  # +200 busy, +250 in all
    t = sampler.summary(tokens=1)
    assert t.cpu_load_avg == pytest.approx(0.8) and t.cpu_freq_mhz_avg == 2400.0


def test_a_real_cpu_run_records_cpu_telemetry() -> None:
    from gptbench.bench.config import RunOptions, resolve_config
    from gptbench.bench.runner import run_benchmark

    run = run_benchmark(resolve_config(RunOptions(device="cpu", model="tiny", micro_batch=1, steps=3, warmup_steps=1)))
    t = run.result.telemetry
    assert run.result.status == "ok" and t is not None and t.samples >= 2 and t.gpus == 0
    assert t.cpu_load_avg is None or 0 <= t.cpu_load_avg <= 1
    assert t.window_s == pytest.approx(sum(run.result.step_times_s), rel=0.2, abs=0.05)


# --- where the figures show: report file, summary, estimate, compare -------------------------------------------


def _config() -> RunConfig:
    shape = ModelShape("124m", 12, 12, 768, 50304, 1024, 124_475_904)
    return RunConfig(shape, 1024, 16, 1, 1, 16384, "bf16", True, "sdpa", True, True, "synthetic", device="cuda:0")


def _gpu_report(telemetry: Telemetry | None, host: str) -> Report:
    """A report shaped like `gptbench run` writes on an A100; its numbers are made up for the tests."""
    result = RunResult(tokens_per_sec=100_000.0, tokens_per_sec_p10=95_000.0, tokens_per_sec_p90=101_000.0, telemetry=telemetry)
    machine = Machine(hostname=host, accelerator=Accelerator("cuda", "NVIDIA A100-SXM4-40GB", 1))
    return Report(machine, [Run(_config(), result)], created="2026-11-28T00:00:00+00:00")


def _measured() -> Telemetry:
    clock = FakeClock()
    return play(FakeNvml(frames(energy_w=250), clock), clock, 11, tokens=100_000)


def test_telemetry_round_trips_through_a_report_file(tmp_path: Path) -> None:
    t = _measured()
    path = write_report(_gpu_report(t, "a100"), tmp_path)
    assert load_report(path).runs[0].result.telemetry == t
    assert json.loads(path.read_text())["runs"][0]["result"]["telemetry"]["energy_source"] == "counter"


def test_summary_shows_power_joules_per_token_and_clocks() -> None:
    rows = dict(telemetry_rows(Run(_config(), RunResult(tokens_per_sec=100_000.0, telemetry=_measured()))))
    assert rows["power"] == "250 W avg · 300 W max · 0.0025 J/token (NVML energy counter, 1 GPU)"
    assert rows["GPU"] == "SM 1,930–1,980 MHz · memory 2,619 MHz · 60–70 °C · 95% busy"
    no_nvml = Telemetry(unavailable={"power_avg_w": "NVML not available: no NVIDIA driver"})
    rows = dict(telemetry_rows(Run(_config(), RunResult(tokens_per_sec=1.0, telemetry=no_nvml))))
    assert rows["power"] == "n/a (NVML not available: no NVIDIA driver)"


def test_estimate_kwh_price_uses_the_measured_power(tmp_path: Path) -> None:
    path = write_report(_gpu_report(_measured(), "a100"), tmp_path)
    args = ["estimate", "--report", str(path), "--tokens", "1e9", "--kwh-price", "0.2", "--json"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    electricity = json.loads(result.stdout)["electricity"]
    hours = 1e9 / 100_000 / 3600
    assert electricity["power_basis"] == "measured" and electricity["power_w"] == 250.0
    assert electricity["kwh"] == pytest.approx(0.25 * hours)


def test_compare_shows_watts_and_joules_per_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from gptbench.cli.common import out

    monkeypatch.setattr(out, "width", 250)  # every column: narrower terminals drop W and J/token first
    write_report(_gpu_report(_measured(), "measured"), tmp_path)
    write_report(_gpu_report(None, "older"), tmp_path)  # a report from before telemetry: n/a, not an error
    runner = CliRunner()
    table = runner.invoke(app, ["compare", str(tmp_path)]).stdout
    assert " W " in table and " J/token " in table
    (measured,) = [line for line in table.splitlines() if line.startswith(" measured ")]
    assert " 250 " in measured and " 0.0025 " in measured
    data = json.loads(runner.invoke(app, ["compare", str(tmp_path), "--json"]).stdout)
    by_host = {run["hostname"]: (run["power_avg_w"], run["joules_per_token"], run["throttled"]) for run in data["runs"]}
    assert by_host == {"measured": (250.0, 0.0025, False), "older": (None, None, None)}


@pytest.mark.gpu
def test_real_nvml_telemetry_on_a_gpu() -> None:
    import torch

    device = torch.device("cuda", 0)
    x = torch.randn(4096, 4096, device=device)
    sampler = sampler_for(device)
    with sampler:
        deadline = time.perf_counter() + 1.5  # longer than NVML's 1 s power averaging
        while time.perf_counter() < deadline:
            x = torch.tanh(x @ x)
            torch.cuda.synchronize(device)
    t = sampler.summary(tokens=1_000)
    assert t.gpus == 1 and t.samples >= 10 and t.power_avg_w is not None and t.power_avg_w > 0
    assert t.sm_clock_mhz_max is not None and t.temperature_c_max is not None and t.throttled is not None
    assert t.joules_per_token == pytest.approx(t.energy_j / 1_000)
