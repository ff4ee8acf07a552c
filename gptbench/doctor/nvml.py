"""The doctor's NVML checks for each CUDA device: which NVML device it is, the energy counter, the power limit, the
clock-event reasons now, other processes, and the links DDP would use. Function names and units are the NVML API
reference's (docs.nvmlDeviceGet*: milliwatts, millijoules, PCIe generation and lane count)."""

from __future__ import annotations

import torch

from gptbench.doctor.checks import FAIL, INFO, OK, WARN, Check
from gptbench.hardware import nvml as nvml_lib
from gptbench.hardware.nvml import Nvml, NvmlHandle

NVLINK_MAX_LINKS = 18  # NVML_NVLINK_MAX_LINKS in nvml.h (Hopper has 18)


def nvml_checks(cuda_devices: list[torch.device]) -> list[Check]:
    """NVML itself, then each CUDA device as NVML sees it."""
    pynvml, why = nvml_lib.init_nvml()
    if pynvml is None:
        status = WARN if cuda_devices else INFO
        advice = "pip install nvidia-ml-py" if "not installed" in (why or "") else None
        return [Check("nvml", "NVML", status, why or "NVML not available", advice)]
    driver = _text(pynvml.nvmlSystemGetDriverVersion())
    checks = [Check("nvml", "NVML", OK, f"driver {driver} · NVML {_text(pynvml.nvmlSystemGetNVMLVersion())}")]
    for device in cuda_devices:
        checks += device_checks(pynvml, device)
    return checks


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def device_checks(nvml: Nvml, device: torch.device) -> list[Check]:
    """The NVML device that matches `device` (by UUID), and what it says about power, clocks and links."""
    area = str(device)
    handle = nvml_lib.nvml_handle(device)
    if handle is None:
        advice = "no power, energy or throttling figures for runs on it; check the driver and nvidia-ml-py"
        return [Check(area, "NVML device", FAIL, "no NVML device matches this CUDA device's UUID or PCI bus id", advice)]
    uuid = _text(nvml.nvmlDeviceGetUUID(handle))
    checks = [Check(area, "NVML device", OK, f"{_text(nvml.nvmlDeviceGetName(handle))} · {uuid}")]
    for probe in (_energy, _power_limit, _clock_reasons, _others, _pcie, _nvlink):
        try:
            checks.append(probe(nvml, handle, area))
        except Exception as e:  # noqa: BLE001 - NVML_ERROR_NOT_SUPPORTED on this GPU: say so and go on
            checks.append(Check(area, probe.__name__.strip("_").replace("_", " "), INFO, f"NVML: {e or type(e).__name__}"))
    return checks


def _energy(nvml: Nvml, handle: NvmlHandle, area: str) -> Check:
    try:
        nvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except Exception as e:  # noqa: BLE001
        return Check(area, "energy counter", INFO, f"none ({e})", "energy is integrated from power samples instead")
    return Check(area, "energy counter", OK, "present: J/token from the counter")


def _power_limit(nvml: Nvml, handle: NvmlHandle, area: str) -> Check:
    limit = nvml.nvmlDeviceGetEnforcedPowerLimit(handle) / 1000
    default = nvml.nvmlDeviceGetPowerManagementDefaultLimit(handle) / 1000
    if limit < 0.98 * default:
        advice = f"runs here are slower than on the same GPU at its default; `nvidia-smi -pl {default:.0f}` (as root) restores it"
        return Check(area, "power limit", WARN, f"{limit:.0f} W, below the default {default:.0f} W", advice)
    return Check(area, "power limit", OK, f"{limit:.0f} W (default {default:.0f} W)")


def _clock_reasons(nvml: Nvml, handle: NvmlHandle, area: str) -> Check:
    from gptbench.bench.telemetry import COSTLY_MASK, clock_reasons_reader, reason_names

    mask = int(clock_reasons_reader(nvml, handle)(handle))
    costly = reason_names(mask & COSTLY_MASK)
    if costly:
        advice = "the GPU is held below its clocks while idle: a run now may throttle; check cooling and power"
        return Check(area, "clock limits now", WARN, ", ".join(costly), advice)
    return Check(area, "clock limits now", OK, ", ".join(reason_names(mask)) or "none")


def _others(nvml: Nvml, handle: NvmlHandle, area: str) -> Check:
    from gptbench.bench.contention import gpu_snapshot

    others, utilization, _ = gpu_snapshot(nvml, handle)
    if others or (utilization or 0) > 0.05:
        names = ", ".join(f"pid {p.pid}" + (f" ({p.name})" if p.name else "") for p in others[:4]) or "none listed"
        value = f"{len(others)} other process(es): {names}; utilisation {utilization or 0:.0%}"
        return Check(area, "other processes", WARN, value, "a run now would share the GPU: its numbers would be low")
    return Check(area, "other processes", OK, "none")


def _pcie(nvml: Nvml, handle: NvmlHandle, area: str) -> Check:
    gen, width = nvml.nvmlDeviceGetCurrPcieLinkGeneration(handle), nvml.nvmlDeviceGetCurrPcieLinkWidth(handle)
    max_gen, max_width = nvml.nvmlDeviceGetMaxPcieLinkGeneration(handle), nvml.nvmlDeviceGetMaxPcieLinkWidth(handle)
    value = f"gen{gen} x{width} (the link can do gen{max_gen} x{max_width})"
    if width < max_width:
        advice = "fewer lanes than the card has: host transfers and DDP over PCIe run slower; check the slot and riser"
        return Check(area, "PCIe link", WARN, value, advice)
    note = "an idle GPU lowers its PCIe generation to save power: normal" if gen < max_gen else None
    return Check(area, "PCIe link", OK, value, note)


def _nvlink(nvml: Nvml, handle: NvmlHandle, area: str) -> Check:
    active = 0
    for link in range(NVLINK_MAX_LINKS):
        try:
            active += int(nvml.nvmlDeviceGetNvLinkState(handle, link) == 1)
        except Exception:  # noqa: BLE001, S112 - links past the GPU's count answer Not Supported / Invalid Argument
            continue
    if active:
        return Check(area, "NVLink", OK, f"{active} active links: DDP's all-reduce goes over NVLink")
    return Check(area, "NVLink", INFO, "none: with several GPUs, DDP's all-reduce goes over PCIe")
