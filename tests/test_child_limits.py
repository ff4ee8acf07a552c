"""Issue 28, part 3: every child of `--batch auto` (probes and the candidates' full runs) starts under a memory cap and
a time limit; on a host the cap is never above the memory available when that child starts (re-read each time);
`--memory-limit` above the machine's memory is refused; on CUDA the child's caching allocator is capped with
torch.cuda.set_per_process_memory_fraction (faked here, following torch/cuda/memory.py in torch 2.13)."""

from __future__ import annotations

import dataclasses
import json
import types
from typing import Any

import pytest
from test_faults import _fake_run
from typer.testing import CliRunner

from gptbench.bench import worker
from gptbench.bench.config import RunOptions, resolve_config
from gptbench.cli import app
from gptbench.studies import autobatch
from gptbench.studies.autobatch import auto_batch

TINY = resolve_config(RunOptions(device="cpu", model="tiny", seq_len=32, steps=3, warmup_steps=1))
GB = 1e9


def test_every_child_is_capped_at_the_memory_available_when_it_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host has 8 GB available for the bound, then less and less as other processes start."""
    available = iter([8.0, 6.0, 3.0, 2.0, 1.5, 1.2, 1.1, 1.0, 0.9, 0.8])
    now: list[float] = []

    def host_gb() -> float:
        now.append(next(available))
        return now[-1]

    started: list[tuple[int, float | None, float | None, float]] = []

    def child(config: Any, timeout_s: float | None = None, data_limit_gb: float | None = None) -> Any:
        started.append((config.steps, timeout_s, data_limit_gb, now[-1]))
        return _fake_run(config)  # 0.1 GB: every batch fits

    monkeypatch.setattr(autobatch, "_available_host_gb", host_gb)
    monkeypatch.setattr(autobatch, "run_in_subprocess", child)
    found = auto_batch(TINY, None, 0.1, max_batch=4)
    assert [r.config.micro_batch for r in found.runs] == [4, 2, 1]
    probes, runs = [s for s in started if s[0] == 1], [s for s in started if s[0] == 3]
    assert len(probes) == 3 and len(runs) == 3
    for _, timeout_s, cap, available_then in started:
        assert cap is not None and cap <= available_then and cap <= 8.0 * 0.9 + 0.5
        assert timeout_s is not None and timeout_s > 0
    assert started[0][2] == pytest.approx(6.0)  # the bound's 7.2 GB + margin, cut to the 6 GB available at the start
    assert [s[2] for s in runs] == pytest.approx([s[3] for s in runs])  # by then less was available than the cap


def test_a_candidates_time_limit_grows_with_its_probes_step_and_compilation() -> None:
    limits = autobatch.probe_limits("cpu", 4.0)
    eager, compiled = dataclasses.replace(TINY, compile=False), dataclasses.replace(TINY, compile=True)
    assert limits.run_timeout_s(eager, 1.0) == autobatch.START_S + 4 * 1.0 * (1 + 3)
    assert limits.run_timeout_s(compiled, 1.0) == limits.run_timeout_s(eager, 1.0) + autobatch.COMPILE_ALLOWANCE_S
    assert autobatch.probe_limits("cuda:0", 70.0).process_timeout_s == autobatch.START_S * 5  # GPUs too


def test_a_memory_limit_above_the_host_is_one_line_and_exit_2(tmp_path: Any) -> None:
    args = ["run", "--device", "cpu", "--model", "tiny", "--batch", "auto", "--memory-limit", "100000GB"]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    (line,) = [x for x in result.stderr.splitlines() if x.startswith("error:")]
    assert "--memory-limit 100000GB" in line and "more than" in line and list(tmp_path.iterdir()) == []


def fake_cuda(monkeypatch: pytest.MonkeyPatch, total_bytes: int) -> list[tuple[float, int]]:
    """torch.cuda as a CUDA host shows it: one device of `total_bytes`, the current one 0; the fractions set."""
    import torch

    calls: list[tuple[float, int]] = []

    def set_fraction(fraction: float, device: Any = None) -> None:
        if not isinstance(fraction, float):  # as torch/cuda/memory.py: a float in 0..1, an index for the device
            raise TypeError("Invalid type for fraction argument, must be `float`")
        if not 0 <= fraction <= 1:
            raise ValueError(f"Invalid fraction value: {fraction}. Allowed range: 0~1")
        if not isinstance(device, int):
            raise ValueError("Expected a torch.device with a specified index or an integer")
        calls.append((fraction, device))

    monkeypatch.setattr(torch.cuda, "get_device_properties", lambda d: types.SimpleNamespace(total_memory=total_bytes))
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "set_per_process_memory_fraction", set_fraction)
    return calls


def test_a_cuda_childs_caching_allocator_is_capped_at_its_share(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = fake_cuda(monkeypatch, 80 * 10**9)
    assert worker.cap_device("cuda", 72 * 10**9) == pytest.approx(0.9)
    assert worker.cap_device("cuda:1", 200 * 10**9) == 1.0  # never past the whole device
    assert calls == [(pytest.approx(0.9), 0), (1.0, 1)]


def test_a_cuda_probe_passes_its_cap_to_the_child_as_a_device_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    """The probe's process, not this one, holds the capped CUDA context: an OOM there never reaches the parent's."""
    seen: dict[str, str] = {}

    def fake_run(cmd: list[str], *, input: str, env: dict[str, str], **kwargs: Any) -> Any:
        seen.update(env)
        run = dataclasses.asdict(_fake_run(TINY))
        return types.SimpleNamespace(stdout=worker.RESULT_PREFIX + json.dumps(run) + "\n", stderr="", returncode=0)

    monkeypatch.setattr(worker.subprocess, "run", fake_run)
    worker.run_in_subprocess(dataclasses.replace(TINY, device="cuda:0"), 60.0, 63.0)
    assert seen[worker.DEVICE_LIMIT_ENV] == str(int(63.0 * GB)) and worker.DATA_LIMIT_ENV not in seen
    worker.run_in_subprocess(TINY, 60.0, 3.0)
    assert seen[worker.DATA_LIMIT_ENV] == str(int(3.0 * GB))
