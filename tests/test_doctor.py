"""`gptbench doctor`: real checks on this CPU, a fake NVML for the GPU lines (answers shaped as the NVML API reference
documents them: milliwatts, PCIe generation and lanes, NVLink state 1 = active), and no traceback whatever breaks."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
import torch
from typer.testing import CliRunner

from gptbench.cli import app
from gptbench.doctor import system as doctor
from gptbench.doctor.nvml import device_checks


def test_doctor_on_this_cpu_reports_what_it_found() -> None:
    result = CliRunner().invoke(app, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    checks = {(c["area"], c["name"]): c for c in data["checks"]}
    assert data["schema"] == "gptbench.doctor/1" and data["can_run"] is True
    assert checks[("versions", "torch")]["value"].startswith(torch.__version__)
    assert checks[("cpu", "training step")]["status"] == "ok"
    assert "math" in checks[("cpu", "SDPA kernels")]["value"]
    assert checks[("cpu", "torch.compile")]["status"] in ("ok", "info")
    assert checks[("host", "torch threads")]["value"].startswith(f"{torch.get_num_threads()} intra-op threads")
    assert ("host", "allocator") in checks and ("nvml", "NVML") in checks


def test_a_check_that_breaks_is_a_failed_line_and_no_device_that_trains_is_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(device: torch.device) -> None:
        raise RuntimeError("simulated breakage\nwith a second line")

    monkeypatch.setattr(doctor, "smoke", broken)
    monkeypatch.setattr(doctor, "compile_check", lambda d: doctor.Check(str(d), "torch.compile", "info", "skipped"))
    result = CliRunner().invoke(app, ["doctor", "--json"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    (step,) = [c for c in json.loads(result.stdout)["checks"] if c["name"] == "training step"]
    assert step["status"] == "fail" and step["value"] == "the check itself failed: RuntimeError: simulated breakage"
    assert "could not run a training step on any device" in " ".join(result.stderr.split())


def test_device_limits_the_per_device_checks_and_a_missing_kind_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """`doctor --device cuda` on a GPU machine skips the CPU's training step and compile check (60 s of 77 on an H200)."""
    gpu, cpu = torch.device("cuda", 0), torch.device("cpu")
    monkeypatch.setattr(doctor, "devices", lambda: [gpu, cpu])
    ran: list[str] = []
    for probe in ("cuda_device", "smoke", "sdpa_backends", "fused_adamw", "compile_check"):
        shown = "training step" if probe == "smoke" else probe  # diagnose's can_run reads the training-step line
        monkeypatch.setattr(doctor, probe, lambda d, n=shown: ran.append(f"{d} {n}") or doctor.Check(str(d), n, "ok", ""))
    monkeypatch.setattr("gptbench.doctor.nvml.nvml_checks", lambda found: [doctor.Check("nvml", "NVML", "info", "fake")])
    diagnosis = doctor.diagnose(kind="cuda")
    assert ran and all(r.startswith("cuda:0") for r in ran) and diagnosis.can_run
    areas = {c.area for c in diagnosis.checks}
    assert areas >= {"versions", "cuda:0", "host"} and "cpu" not in areas
    monkeypatch.setattr(doctor, "devices", lambda: [cpu])
    for args, message in ((["--device", "cuda"], "no CUDA device here (found: cpu)"), (["--device", "gpu"], "choose one of")):
        result = CliRunner().invoke(app, ["doctor", *args])
        assert result.exit_code == 2 and message in result.stderr and "Traceback" not in result.output


class Nvml:
    """A GPU held at a lowered power limit, power-capped now, on 8 of its 16 PCIe lanes, with 18 NVLinks up."""

    def nvmlDeviceGetUUID(self, h: object) -> str:
        return "GPU-1234"

    def nvmlDeviceGetName(self, h: object) -> str:
        return "NVIDIA H200"

    def nvmlDeviceGetTotalEnergyConsumption(self, h: object) -> int:
        return 10**9

    def nvmlDeviceGetEnforcedPowerLimit(self, h: object) -> int:
        return 500_000

    def nvmlDeviceGetPowerManagementDefaultLimit(self, h: object) -> int:
        return 700_000

    def nvmlDeviceGetCurrentClocksEventReasons(self, h: object) -> int:
        return 0x4

    def nvmlDeviceGetComputeRunningProcesses(self, h: object) -> list:
        return []

    def nvmlDeviceGetUtilizationRates(self, h: object) -> SimpleNamespace:
        return SimpleNamespace(gpu=0)

    def nvmlDeviceGetCurrPcieLinkGeneration(self, h: object) -> int:
        return 5

    def nvmlDeviceGetCurrPcieLinkWidth(self, h: object) -> int:
        return 8

    def nvmlDeviceGetMaxPcieLinkGeneration(self, h: object) -> int:
        return 5

    def nvmlDeviceGetMaxPcieLinkWidth(self, h: object) -> int:
        return 16

    def nvmlDeviceGetNvLinkState(self, h: object, link: int) -> int:
        if link >= 18:
            raise RuntimeError("Invalid Argument")
        return 1


def test_gpu_lines_say_what_costs_speed_and_how_to_fix_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from gptbench.hardware import nvml as device

    monkeypatch.setattr(device, "nvml_handle", lambda d: object())
    checks = {c.name: c for c in device_checks(Nvml(), torch.device("cuda", 0))}
    assert checks["NVML device"].value == "NVIDIA H200 · GPU-1234"
    assert checks["power limit"].status == "warn" and "nvidia-smi -pl 700" in checks["power limit"].advice
    assert checks["clock limits now"].status == "warn" and checks["clock limits now"].value == "power cap"
    assert checks["PCIe link"].status == "warn" and checks["PCIe link"].value.startswith("gen5 x8")
    assert checks["NVLink"].value.startswith("18 active links")
    assert checks["energy counter"].status == checks["other processes"].status == "ok"


def test_no_nvml_device_for_a_cuda_device_is_a_failed_line(monkeypatch: pytest.MonkeyPatch) -> None:
    from gptbench.hardware import nvml as device

    monkeypatch.setattr(device, "nvml_handle", lambda d: None)
    (check,) = device_checks(Nvml(), torch.device("cuda", 1))
    assert check.status == "fail" and "UUID" in check.value


def test_what_torch_says_during_the_compile_probe_is_in_the_check_not_on_the_terminal(
    monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """torch.utils.cpp_extension logs "No CUDA runtime is found, using CUDA_HOME=…" through `logging` (torch 2.x,
    cpp_extension._find_cuda_home); C++ writes to descriptor 2; Python code prints. None of it reaches the screen."""
    import logging
    import os
    import sys

    def talkative_probe(device: torch.device) -> None:
        logging.getLogger("torch.utils.cpp_extension").warning("No CUDA runtime is found, using CUDA_HOME='%s'", "/usr/x")
        print("a print from python")
        sys.stderr.write("a write to sys.stderr\n")
        os.write(2, b"a write to fd 2, as C++ does\n")
        os.write(1, b"a write to fd 1\n")

    monkeypatch.setattr(doctor.support, "compile_probe", talkative_probe)
    torch_logger = logging.getLogger("torch")
    before = torch_logger.handlers[:], torch_logger.propagate  # torch installs its own handler, propagate off
    check = doctor.compile_check(torch.device("cpu"))
    out, err = capfd.readouterr()
    said = ("No CUDA runtime is found, using CUDA_HOME='/usr/x'", "a print from python", "a write to sys.stderr")
    said += ("a write to fd 2, as C++ does", "a write to fd 1")
    assert check.status == "ok" and all(line in check.value for line in said), check.value
    assert out == err == ""
    print("after the probe")  # the descriptors and streams are back where they were
    os.write(2, b"fd 2 again\n")
    assert capfd.readouterr() == ("after the probe\n", "fd 2 again\n")
    assert (torch_logger.handlers, torch_logger.propagate) == before  # the logger as it was
