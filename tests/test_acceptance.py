"""benchmarks/gpu_acceptance.py: each judge fails for the right reason and passes otherwise (recorded or faked
outputs), a timed-out step dies with its whole process group, the verdicts reach disk after every step, and
without a GPU it says so in one line."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from gptbench.hardware.nvml import nvml_keys

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_acceptance.py"
spec = importlib.util.spec_from_file_location("gpu_acceptance", SCRIPT)
acceptance = importlib.util.module_from_spec(spec)
sys.modules["gpu_acceptance"] = acceptance  # dataclasses look their module up while the class is built
spec.loader.exec_module(acceptance)


def test_the_default_plan_fits_five_minutes_on_one_gpu() -> None:
    one_gpu = ("doctor", "peak", "default step", "auto-batch", "pytest -m gpu")
    planned = acceptance.IN_PROCESS_S + sum(acceptance.PLAN[s][0] for s in one_gpu)
    assert planned <= acceptance.DEFAULT_BUDGET_S <= 300
    assert f"{planned}   --budget-s {acceptance.DEFAULT_BUDGET_S}" in acceptance.__doc__  # the table says the same


def test_compile_prerequisites_are_stated_up_front() -> None:
    status, detail = acceptance.judge_prerequisites("no C compiler found (gcc, clang or $CC)")
    assert status == "FAIL" and "torch.compile would be off: no C compiler" in detail
    assert acceptance.judge_prerequisites(None)[0] == "PASS"


def test_doctor_fails_on_a_failed_check_a_bad_exit_or_no_json() -> None:
    ok = {"checks": [{"area": "cuda:0", "name": "GPU", "status": "ok", "value": "H200"}]}
    assert acceptance.judge_doctor(0, ok)[0] == "PASS"
    failed = {"checks": [{"area": "cuda:0", "name": "NVML device", "status": "fail", "value": "none"}]}
    assert acceptance.judge_doctor(0, failed) == ("FAIL", "cuda:0 NVML device: none")
    assert acceptance.judge_doctor(1, ok) == ("FAIL", "exit 1")
    assert acceptance.judge_doctor(0, None)[0] == "FAIL"


class FakeNvml:
    """Two physical GPUs as NVML numbers them (it ignores CUDA_VISIBLE_DEVICES); a handle is the physical index."""

    GPUS = [("GPU-aaaa", "00000000:1B:00.0"), ("GPU-bbbb", "00000000:2C:00.0")]

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:  # noqa: N802 - pynvml's names
        return i

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> int:  # noqa: N802
        return [u for u, _ in self.GPUS].index(uuid)

    def nvmlDeviceGetPciInfo(self, handle: int) -> SimpleNamespace:  # noqa: N802
        return SimpleNamespace(busId=self.GPUS[handle][1].encode())  # older pynvml returns bytes


def test_nvml_is_judged_by_pci_address_with_reordered_visible_devices() -> None:
    """CUDA_VISIBLE_DEVICES=1: CUDA's device 0 is physical GPU 1 (bus 0x2C). gptbench's lookup (by UUID) finds it;
    a lookup by index finds physical GPU 0, and the PCI comparison catches that."""
    nvml = FakeNvml()
    props = SimpleNamespace(uuid="bbbb", pci_domain_id=0, pci_bus_id=0x2C, pci_device_id=0)
    ids = (props.pci_domain_id, props.pci_bus_id, props.pci_device_id)
    lookup, key = nvml_keys(props)[0]
    right = getattr(nvml, lookup)(key)
    status, detail = acceptance.judge_nvml(nvml.nvmlDeviceGetPciInfo(right).busId, *ids)
    assert status == "PASS" and "00000000:2C:00.0" in detail
    by_index = nvml.nvmlDeviceGetHandleByIndex(0)
    status, detail = acceptance.judge_nvml(nvml.nvmlDeviceGetPciInfo(by_index).busId, *ids)
    assert status == "FAIL" and "00000000:1B:00.0 != CUDA 00000000:2C:00" in detail
    assert acceptance.judge_nvml("0000:2C:00.0", *ids)[0] == "PASS"  # the legacy 4-digit domain
    assert acceptance.judge_nvml(None, *ids)[0] == "FAIL"
    assert acceptance.judge_nvml("garbage", *ids)[0] == "FAIL"


def counts(graphs: int, breaks: int = 0) -> dict:
    return {"graph_breaks": breaks, "graph_break_reasons": ["print() in forward"] * bool(breaks), "unique_graphs": graphs}


def test_graph_judge_needs_compile_on_and_no_break_or_new_graph() -> None:
    clean = {"compile": True, "counts": {"warmup": counts(1), "measured": counts(1), "checks": counts(1)}}
    assert acceptance.judge_graph(clean)[0] == "PASS"
    off = {"compile": False, "compile_problem": "Triton is not installed", "counts": clean["counts"]}
    assert acceptance.judge_graph(off) == ("FAIL", "compile is off in the measured config (Triton is not installed)")
    eager = {"compile": True, "counts": {"warmup": counts(0), "measured": counts(0)}}
    assert "captured no graph" in acceptance.judge_graph(eager)[1]
    late = {"compile": True, "counts": {"warmup": counts(1), "measured": counts(1), "checks": counts(2)}}
    assert acceptance.judge_graph(late) == ("FAIL", "0 graph break(s), 1 new graph(s) after warm-up")
    broken = {"compile": True, "counts": {"warmup": counts(2, 1), "measured": counts(2, 1)}}
    status, detail = acceptance.judge_graph(broken)
    assert status == "FAIL" and detail.startswith("1 graph break(s)") and "print() in forward" in detail
    crashed = {"compile": True, "error": "CUDA out of memory", "counts": {}}
    assert acceptance.judge_graph(crashed) == ("FAIL", "the measured steps never began (CUDA out of memory)")


def test_dynamo_counts_see_real_recompiles_and_graph_breaks() -> None:
    """The counter names are torch's own: a real Dynamo run (eager backend, no C compiler needed) moves them."""
    import torch._dynamo

    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    fn = torch.compile(lambda x: torch.sin(x) + 1, backend="eager")
    fn(torch.ones(4))
    warm = acceptance.dynamo_counts()
    fn(torch.ones(4))
    step = {"compile": True, "counts": {"warmup": warm, "measured": acceptance.dynamo_counts()}}
    assert warm["unique_graphs"] >= 1 and acceptance.judge_graph(step)[0] == "PASS"
    fn(torch.ones(7))  # a new shape after warm-up: a recompile
    step["counts"]["measured"] = acceptance.dynamo_counts()
    assert "new graph(s) after warm-up" in acceptance.judge_graph(step)[1]

    def broken(x: torch.Tensor) -> torch.Tensor:
        x = x * 2
        torch._dynamo.graph_break()
        return x + 1

    torch.compile(broken, backend="eager")(torch.ones(4))
    assert acceptance.dynamo_counts()["graph_breaks"] >= 1
    torch._dynamo.reset()


def test_harness_against_cuda_events() -> None:
    assert acceptance.judge_harness([1.00, 1.02, 1.01], 1.0)[0] == "PASS"
    status, detail = acceptance.judge_harness([1.05, 1.06, 1.04], 1.0)
    assert status == "FAIL" and "+5.00%" in detail


def test_attention_kernel_from_the_profile() -> None:
    flash = ["aten::_scaled_dot_product_flash_attention", "void pytorch_flash::flash_fwd_kernel<...>", "aten::mm"]
    assert acceptance.judge_attention(flash)[0] == "PASS"
    assert acceptance.judge_attention(["aten::_scaled_dot_product_attention_math", "aten::bmm"])[0] == "FAIL"
    assert acceptance.judge_attention(["aten::mm"])[0] == "FAIL"


def test_peak_judgement() -> None:
    ok, low = acceptance.judge_peak({"best_tflops": {"bf16": 700.0}, "bandwidth_gbs": 3500.0}, 989.5, 4800.0)
    assert (ok.status, low.status) == ("PASS", "PASS") and "71%" in ok.detail
    bad = acceptance.judge_peak({"best_tflops": {"bf16": 400.0}, "bandwidth_gbs": 2000.0}, 989.5, 4800.0)
    assert [r.status for r in bad] == ["FAIL", "FAIL"]


def batch_run(micro_batch: int, status: str = "ok", compiled: bool = True, reserved: float = 80.0) -> dict:
    result = {"status": status, "tokens_per_sec": 9e5, "memory": {"peak_reserved_gb": reserved}}
    return {"config": {"micro_batch": micro_batch, "compile": compiled}, "result": result}


def test_largest_batch_must_run_compiled_within_the_probes_bound() -> None:
    assert acceptance.judge_largest_batch([batch_run(16), batch_run(128)], 126.9)[0] == "PASS"
    oom = [batch_run(16), {**batch_run(64, "oom"), "result": {"status": "oom", "error": "CUDA out of memory"}}]
    status, detail = acceptance.judge_largest_batch(oom)
    assert status == "FAIL" and detail.startswith("micro-batch 64: oom")
    assert acceptance.judge_largest_batch([batch_run(128, compiled=False)])[1].startswith("micro-batch 128: ok, eager")
    status, detail = acceptance.judge_largest_batch([batch_run(128, reserved=130.0)], 126.9)
    assert status == "FAIL" and "130.0 GB reserved of the 126.9 GB bound" in detail
    assert acceptance.judge_largest_batch([])[0] == "FAIL"


def test_ddp_needs_a_scaling_efficiency_of_at_least_085() -> None:
    def report(eff: float | None) -> dict:
        return {"runs": [{"result": {"scaling_efficiency": eff}}, {"result": {}}]}

    assert acceptance.judge_ddp(0, report(0.93)) == ("PASS", "93.0% of linear at 2 processes (needs 85%)")
    assert acceptance.judge_ddp(0, report(0.62))[0] == "FAIL"
    assert acceptance.judge_ddp(1, report(None)) == ("FAIL", "no scaling efficiency in the report (exit 1)")
    assert acceptance.judge_ddp(1, None)[0] == "FAIL"


def test_pytest_needs_a_passed_test() -> None:
    assert acceptance.judge_pytest(0, "....\n8 passed, 300 deselected in 41.2s\n") == (
        "PASS",
        "8 passed, 300 deselected in 41.2s",
    )
    assert acceptance.judge_pytest(0, "8 skipped, 300 deselected in 3.1s")[0] == "FAIL"
    assert acceptance.judge_pytest(1, "1 failed, 7 passed in 40.0s")[0] == "FAIL"


def test_json_comes_from_stdout_only() -> None:
    """A `}` on stderr (a warning, a traceback's dict) broke the old parse of stdout + stderr."""
    code = "import json, sys; print(json.dumps({'checks': []})); print('warning: {x} }', file=sys.stderr)"
    ran = acceptance.run_group([sys.executable, "-c", code], 60)
    assert ran.code == 0 and "}" in ran.stderr
    assert acceptance.json_from_stdout(ran.stdout) == {"checks": []}
    assert acceptance.json_from_stdout(ran.stdout + ran.stderr) is None  # what reading both would have given
    inner = "noise {\n" + acceptance.RESULT_PREFIX + '{"compile": true}\n'
    assert acceptance.json_from_stdout(inner) == {"compile": True}
    assert acceptance.json_from_stdout("no json here") is None


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat")  # a zombie waiting for a reaper is gone too: it holds nothing
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_a_timed_out_step_takes_its_whole_process_group_with_it(tmp_path: Path) -> None:
    """The child starts a grandchild that ignores SIGTERM (like a GPU worker that will not stop); both must go."""
    pidfile = tmp_path / "grandchild.pid"
    script = f"(trap '' TERM; exec sleep 300) & echo $! > {pidfile}; wait"
    ran = acceptance.run_group(["bash", "-c", script], timeout_s=5, grace_s=1)
    assert ran.code == 124 and "with its whole process group" in ran.stderr
    pid = int(pidfile.read_text())
    for _ in range(600):  # a generous bound: the verdict is whether it goes, not how fast
        if _gone(pid):
            break
        time.sleep(0.1)
    assert _gone(pid), f"grandchild {pid} outlived its timed-out step"


def test_sigterm_to_the_acceptance_process_stops_the_running_steps_group(tmp_path: Path) -> None:
    """`timeout` signals gpu_acceptance.py, not the step it started in a session of its own: the step must go too."""
    pidfile = tmp_path / "grandchild.pid"
    step = f"(trap '' TERM; exec sleep 300) & echo $! > {pidfile}; wait"
    code = (
        f"import sys, importlib.util as u; s = u.spec_from_file_location('a', {str(SCRIPT)!r});"
        "m = u.module_from_spec(s); sys.modules['a'] = m; s.loader.exec_module(m); m.exit_on_sigterm();"
        f"m.run_group(['bash', '-c', {step!r}], 300, grace_s=1)"
    )
    parent = subprocess.Popen([sys.executable, "-c", code])
    for _ in range(1200):  # a generous bound for the interpreter and bash to start
        if pidfile.exists() and pidfile.read_text().strip():
            break
        time.sleep(0.1)
    parent.terminate()
    assert parent.wait(timeout=120) == 128 + 15
    pid = int(pidfile.read_text())
    for _ in range(600):
        if _gone(pid):
            break
        time.sleep(0.1)
    assert _gone(pid), f"grandchild {pid} outlived the acceptance process"


def test_verdicts_reach_disk_after_every_step_and_the_deadline_skips(tmp_path: Path) -> None:
    acc = acceptance.Acceptance(tmp_path, budget_s=1000, mode="default", gpu="test")
    acc.save()
    ran = acc.step("doctor", [sys.executable, "-c", "print('{}')"], ["doctor"])
    acc.add(acceptance.Result("doctor", "PASS", "stub", ran.seconds))
    saved = json.loads((tmp_path / "acceptance.json").read_text())
    assert saved["finished"] is False and [r["name"] for r in saved["results"]] == ["doctor"]
    assert "===== doctor" in (tmp_path / "acceptance.log").read_text()
    acc.budget_s = 0  # no time left: the next step is a SKIP that says why, on disk at once
    assert acc.step("auto-batch", [sys.executable, "-c", "raise SystemExit(3)"], ["auto-batch"]) is None
    saved = json.loads((tmp_path / "acceptance.json").read_text())
    skip = saved["results"][-1]
    assert skip["status"] == "SKIP" and "this step plans 90 s" in skip["detail"] and acc.late == ["auto-batch"]
    assert not list(tmp_path.glob(".acceptance.json.*"))  # no temporary file left behind


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU answer")
def test_without_a_gpu_it_says_so_in_one_line_and_exits_2(tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2 and len(proc.stdout.strip().splitlines()) == 1 and "no CUDA GPU here" in proc.stdout
    assert not (tmp_path / "x").exists()


SESSION = ROOT / "benchmarks" / "gpu_session.sh"


def test_the_session_script_parses() -> None:
    assert subprocess.run(["bash", "-n", str(SESSION)], capture_output=True).returncode == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU answer")
def test_the_session_script_stops_at_once_without_a_gpu(tmp_path: Path) -> None:
    proc = subprocess.run(["bash", str(SESSION), str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "no CUDA GPU here" in proc.stdout + proc.stderr
    assert len(list(tmp_path.iterdir())) <= 8
