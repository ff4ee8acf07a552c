from __future__ import annotations

import math

import pytest
import torch

from gptbench.bench.config import RunOptions, resolve_config
from gptbench.bench.flops import flops_per_token, formula_for, matmul_params, mfu
from gptbench.bench.harness import measure, quantile, throughput
from gptbench.bench.runner import run_benchmark
from gptbench.errors import GptbenchError
from gptbench.model.config import GPTConfig


def test_flops_per_token_for_gpt2_124m() -> None:
    model = GPTConfig.from_name("124m")
    assert matmul_params(model) == 124_439_808 - 1024 * 768
    # 6 * 123,653,376 + 12 * 12 layers * 1024 positions * 768 width
    assert flops_per_token(model, 1024) == 741_920_256 + 113_246_208


def test_flops_per_token_for_the_books_124m_count_the_head_and_neither_table() -> None:
    model = GPTConfig.from_name("book-124m")
    # 163,009,536 less the 1024 x 768 position table and the 50257 x 768 token table; the head's matmul stays in
    assert matmul_params(model) == 163_009_536 - 1024 * 768 - 50257 * 768 == 123_625_728
    assert flops_per_token(model, 256) == 6 * 123_625_728 + 12 * 12 * 256 * 768
    assert formula_for(model) != formula_for(GPTConfig.from_name("124m"))


def test_book_presets_keep_the_books_vocabulary_unless_asked() -> None:
    assert resolve_config(RunOptions(device="cpu", model="book-tiny")).model.vocab_size == 50257
    assert resolve_config(RunOptions(device="cpu", model="book-tiny", vocab_pad=True)).model.vocab_size == 50304
    assert resolve_config(RunOptions(device="cpu", model="tiny")).model.vocab_size == 50304


def test_a_book_run_reports_its_switches() -> None:
    run = run_benchmark(resolve_config(RunOptions(device="cpu", model="book-tiny", steps=1, warmup_steps=0)))
    shape = run.config.model
    assert run.result.status == "ok" and shape.n_params == 6_540_800
    assert (shape.tie_head, shape.qkv_bias, shape.dropout) == (False, False, 0.1)
    assert "untied" in run.result.flops_formula


def test_mfu_is_a_fraction_of_all_devices_peak() -> None:
    assert mfu(100_000, 1e9, 312) == pytest.approx(100_000 * 1e9 / 312e12)
    assert mfu(200_000, 1e9, 312, devices=2) == pytest.approx(mfu(100_000, 1e9, 312))


def test_throughput_median_and_quantiles() -> None:
    rate = throughput([1.0, 2.0, 4.0, 0.5, 1.0], tokens_per_step=1000)
    assert rate.tokens_per_sec == 1000  # median of 1000, 500, 250, 2000, 1000
    assert rate.step_time_s == 1.0
    assert rate.p10 == pytest.approx(quantile([1000, 500, 250, 2000, 1000], 0.1)) == pytest.approx(350)
    assert rate.p90 == pytest.approx(1600)


def test_every_measured_step_is_closed_by_a_sync() -> None:
    events: list[str] = []

    def step() -> torch.Tensor:
        events.append("step")
        return torch.tensor(1.0)

    timing = measure(step, lambda: events.append("sync"), warmup_steps=2, steps=3, tokens_per_step=10)
    assert len(timing.step_times_s) == 3 and len(timing.losses) == 5
    pairs = [(a, b) for a, b in zip(events, events[1:], strict=False) if a == "step"]
    assert pairs and all(b == "sync" for _, b in pairs)


def test_bad_options_are_refused_before_any_work() -> None:
    cases = [
        (RunOptions(device="cpu", model="tiny", seq_len=512), "longer than the model's 128 positions"),
        (RunOptions(device="cpu", model="tiny", micro_batch=0), "--batch must be a positive"),
        (RunOptions(device="cpu", model="tiny", steps=-1), "--steps must be a positive"),
        (RunOptions(device="cpu", model="tiny", grad_accum=0), "--grad-accum must be a positive"),
        (RunOptions(device="cpu", model="nope"), "unknown model preset"),
        (RunOptions(device="cpu", model="tiny", dtype="fp8"), "--dtype fp8"),
        (RunOptions(device="cpu", model="tiny", attention="flash3"), "--attention flash3"),
        (RunOptions(device="cpu", model="tiny", tf32=True), "--tf32 needs a CUDA device"),
        (RunOptions(device="tpu"), "unknown device"),
    ]
    for options, message in cases:
        with pytest.raises(GptbenchError, match=message):
            resolve_config(options)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message on a machine without CUDA")
def test_cuda_without_cuda_says_what_was_found() -> None:
    with pytest.raises(GptbenchError, match="CUDA is not available"):
        resolve_config(RunOptions(device="cuda"))


def test_cpu_defaults() -> None:
    config = resolve_config(RunOptions(device="cpu", model="tiny"))
    assert config.device == "cpu" and not config.compile and not config.tf32
    assert config.seq_len == 128 and config.model.vocab_size == 50304
    assert config.tokens_per_step == config.micro_batch * config.seq_len


def test_tiny_run_accounts_tokens_and_loss() -> None:
    config = resolve_config(RunOptions(device="cpu", model="tiny", micro_batch=2, grad_accum=2, steps=3, warmup_steps=1))
    run = run_benchmark(config)
    r = run.result
    assert r.status == "ok" and len(r.step_times_s) == 3
    assert run.config.tokens_per_step == 2 * 2 * 128
    assert r.tokens_per_sec == pytest.approx(512 / sorted(r.step_times_s)[1], rel=1e-3)  # step times are stored to 1 us
    assert r.tokens_per_sec_p10 <= r.tokens_per_sec <= r.tokens_per_sec_p90
    assert r.loss.all_finite and math.log(50257) - 1 < r.loss.first < math.log(50304) + 1
    assert r.mfu is None and "CPU" in r.mfu_note
    assert r.memory.host_peak_rss_gb > 0
    assert run.config.model.n_params == 3_327_744


def test_nan_loss_is_recorded_not_raised(monkeypatch: pytest.MonkeyPatch) -> None:
    from gptbench.model import gpt

    real = gpt.GPT.forward

    def poisoned(self, idx, targets=None):  # noqa: ANN001, ANN202
        return real(self, idx, targets) * float("nan")

    monkeypatch.setattr(gpt.GPT, "forward", poisoned)
    run = run_benchmark(resolve_config(RunOptions(device="cpu", model="tiny", steps=2, warmup_steps=1)))
    assert run.result.status == "ok"
    assert run.result.loss.all_finite is False and run.result.loss.last is None


def test_the_verdict_trains(verdict) -> None:  # noqa: ANN001
    """The tiny GPT-2 learns the chapter-5 text: loss falls far below ln(50257) ≈ 10.8."""
    options = RunOptions(
        device="cpu",
        model="tiny",
        micro_batch=8,
        seq_len=64,
        data=str(verdict),
        lr=3e-3,
        warmup_steps=0,
        steps=200,
        vocab_pad=False,
    )
    run = run_benchmark(resolve_config(options))
    assert run.result.loss.first > 10
    assert run.result.loss.last < 5.0  # measured: 3.2 after 200 steps
