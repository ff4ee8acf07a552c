"""benchmarks/gpu_acceptance.py: its judgements on recorded outputs, and its one line without a GPU."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_acceptance.py"
spec = importlib.util.spec_from_file_location("gpu_acceptance", SCRIPT)
acceptance = importlib.util.module_from_spec(spec)
sys.modules["gpu_acceptance"] = acceptance  # dataclasses look their module up while the class is built
spec.loader.exec_module(acceptance)


def test_graph_breaks_anywhere_and_recompiles_after_warmup_fail() -> None:
    marker = acceptance.MARKER
    clean = f"V1203 torch/_dynamo/guards.py Recompiling function forward\n{marker}\nstep logs\n"
    assert acceptance.judge_graph_log(clean)[0] == "PASS"
    late = f"{marker}\nV1203 [__recompiles] Recompiling function forward: tensor 'x' size mismatch\n"
    assert acceptance.judge_graph_log(late)[0] == "FAIL"
    broken = f"V1203 [__graph_breaks] Graph break in user code at gpt.py:42\n{marker}\n"
    status, detail = acceptance.judge_graph_log(broken)
    assert status == "FAIL" and "1 graph break line(s)" in detail
    assert acceptance.judge_graph_log("crashed before warm-up ended")[0] == "FAIL"


def test_harness_against_cuda_events() -> None:
    assert acceptance.judge_harness([1.00, 1.02, 1.01], 1.0)[0] == "PASS"
    status, detail = acceptance.judge_harness([1.05, 1.06, 1.04], 1.0)
    assert status == "FAIL" and "+5.00%" in detail


def test_attention_kernel_from_the_profile() -> None:
    flash = ["aten::_scaled_dot_product_flash_attention", "void pytorch_flash::flash_fwd_kernel<...>", "aten::mm"]
    assert acceptance.judge_attention(flash)[0] == "PASS"
    assert acceptance.judge_attention(["aten::_scaled_dot_product_attention_math", "aten::bmm"])[0] == "FAIL"
    assert acceptance.judge_attention(["aten::mm"])[0] == "FAIL"


def test_peak_and_auto_batch_judgements() -> None:
    ok, low = acceptance.judge_peak({"best_tflops": {"bf16": 700.0}, "bandwidth_gbs": 3500.0}, 989.5, 4800.0)
    assert (ok.status, low.status) == ("PASS", "PASS") and "71%" in ok.detail
    bad = acceptance.judge_peak({"best_tflops": {"bf16": 400.0}, "bandwidth_gbs": 2000.0}, 989.5, 4800.0)
    assert [r.status for r in bad] == ["FAIL", "FAIL"]
    runs = [
        {"config": {"micro_batch": 16, "compile": True}, "result": {"status": "ok", "tokens_per_sec": 9e5}},
        {"config": {"micro_batch": 64, "compile": True}, "result": {"status": "oom", "error": "CUDA out of memory"}},
    ]
    status, detail = acceptance.judge_auto_batch({"runs": runs})
    assert status == "FAIL" and detail.startswith("micro-batch 64: oom")
    assert acceptance.judge_auto_batch({"runs": runs[:1]})[0] == "PASS"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU answer")
def test_without_a_gpu_it_says_so_in_one_line_and_exits_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and len(proc.stdout.strip().splitlines()) == 1 and "no CUDA GPU here" in proc.stdout
    assert not (tmp_path / "x").exists()
