"""NVML, the NVIDIA driver's management library, in one place: loading and initialising it, finding the NVML handle
of a CUDA device, and why there is none. NVML is optional everywhere: no driver, no library or an old driver
means no NVML figures, never a failed run."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch

# torch's _CudaDeviceProperties, or a test's stand-in: its uuid and PCI ids are read with getattr (older torch lacks some).
CudaProps = object


class NvmlHandle(Protocol):
    """NVML's device handle (pynvml's c_nvmlDevice_t pointer): opaque, only ever handed back to NVML."""


class MemoryInfo(Protocol):
    used: int  # bytes in use on the whole device, all processes


class Utilization(Protocol):
    gpu: int  # percent of the last sample period in which a kernel ran


class ProcessInfo(Protocol):
    pid: int  # the host's PID inside a container; `usedGpuMemory` is read with getattr (absent on old drivers)


class Nvml(Protocol):
    """The part of pynvml gptbench calls (nvidia-ml-py ships no type information), or a test's stand-in with the same
    functions. Names and units are the NVML API reference's: milliwatts, millijoules, MHz, degrees C."""

    def nvmlInit(self) -> None: ...
    def nvmlSystemGetDriverVersion(self) -> str | bytes: ...
    def nvmlSystemGetNVMLVersion(self) -> str | bytes: ...
    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> NvmlHandle: ...
    def nvmlDeviceGetHandleByPciBusId(self, bus_id: str) -> NvmlHandle: ...
    def nvmlDeviceGetUUID(self, handle: NvmlHandle) -> str | bytes: ...
    def nvmlDeviceGetName(self, handle: NvmlHandle) -> str | bytes: ...
    def nvmlDeviceGetMemoryInfo(self, handle: NvmlHandle) -> MemoryInfo: ...
    def nvmlDeviceGetUtilizationRates(self, handle: NvmlHandle) -> Utilization: ...
    def nvmlDeviceGetComputeRunningProcesses(self, handle: NvmlHandle) -> Sequence[ProcessInfo]: ...
    def nvmlDeviceGetPowerUsage(self, handle: NvmlHandle) -> int: ...
    def nvmlDeviceGetTotalEnergyConsumption(self, handle: NvmlHandle) -> int: ...
    def nvmlDeviceGetEnforcedPowerLimit(self, handle: NvmlHandle) -> int: ...
    def nvmlDeviceGetPowerManagementDefaultLimit(self, handle: NvmlHandle) -> int: ...
    def nvmlDeviceGetClockInfo(self, handle: NvmlHandle, clock: int) -> int: ...
    def nvmlDeviceGetTemperature(self, handle: NvmlHandle, sensor: int) -> int: ...
    def nvmlDeviceGetCurrentClocksEventReasons(self, handle: NvmlHandle) -> int: ...
    def nvmlDeviceGetCurrPcieLinkGeneration(self, handle: NvmlHandle) -> int: ...
    def nvmlDeviceGetCurrPcieLinkWidth(self, handle: NvmlHandle) -> int: ...
    def nvmlDeviceGetMaxPcieLinkGeneration(self, handle: NvmlHandle) -> int: ...
    def nvmlDeviceGetMaxPcieLinkWidth(self, handle: NvmlHandle) -> int: ...
    def nvmlDeviceGetNvLinkState(self, handle: NvmlHandle, link: int) -> int: ...


def init_nvml() -> tuple[Nvml | None, str | None]:
    """(the pynvml module, None) with NVML initialised, or (None, why not). nvmlInit is reference-counted and
    may be called again in the same process (NVML API reference, nvmlInit_v2), so every reader calls this."""
    try:
        import pynvml
    except ImportError:
        return None, "NVML not available: the nvidia-ml-py package is not installed (pip install nvidia-ml-py)"
    try:
        pynvml.nvmlInit()
    except Exception as e:  # noqa: BLE001 - no driver is an answer, not an error
        if getattr(e, "value", None) == getattr(pynvml, "NVML_ERROR_LIBRARY_NOT_FOUND", object()):
            return None, "NVML not available: no NVIDIA driver (libnvidia-ml not found)"
        return None, f"NVML not available: {e}"
    return pynvml, None


def nvml_missing_reason() -> str:
    """Why NVML gives no handle for a CUDA device, in words a user can act on."""
    _, why = init_nvml()
    return why or "NVML not available: NVML did not find this GPU by its PCI bus id"


def nvml_handle(device: torch.device) -> NvmlHandle | None:
    """The NVML handle of a CUDA device, or None. Matched by UUID (`"GPU-" + str(props.uuid)`, the form
    nvmlDeviceGetHandleByUUID takes), else by PCI bus id: never by index, because NVML numbers every GPU of the
    machine and ignores CUDA_VISIBLE_DEVICES, so CUDA's device 0 can be NVML's device 3."""
    pynvml, _ = init_nvml()
    if pynvml is None:
        return None
    try:
        props = torch.cuda.get_device_properties(device)
    except Exception:  # noqa: BLE001 - a device torch cannot describe has no NVML handle either
        return None
    for lookup, key in nvml_keys(props):
        try:
            handle: NvmlHandle = getattr(pynvml, lookup)(key)
            return handle
        except Exception:  # noqa: S112 - try the next way of naming the device
            continue
    return None


def nvml_keys(props: CudaProps) -> list[tuple[str, str]]:
    """The NVML lookups that find `props`'s device, most exact first: (pynvml function name, its argument)."""
    keys = []
    uuid = getattr(props, "uuid", None)
    if uuid is not None:
        text = str(uuid)
        keys.append(("nvmlDeviceGetHandleByUUID", text if text.startswith(("GPU-", "MIG-")) else f"GPU-{text}"))
    bus = getattr(props, "pci_bus_id", None)
    if bus is not None:
        domain = getattr(props, "pci_domain_id", 0)
        keys.append(("nvmlDeviceGetHandleByPciBusId", f"{domain:08X}:{bus:02X}:{getattr(props, 'pci_device_id', 0):02X}.0"))
    return keys


def parse_pci_bus_id(text: str | bytes) -> tuple[int, int, int]:
    """NVML's `DDDDDDDD:BB:DD.F` (or the legacy 4-digit domain; bytes from older nvidia-ml-py) -> (domain, bus, device).
    Raises ValueError for anything else."""
    text = text.decode() if isinstance(text, bytes) else text
    domain, bus, rest = text.strip().split(":")
    return int(domain, 16), int(bus, 16), int(rest.split(".")[0], 16)


def cuda_pci_address(props: CudaProps) -> tuple[int, int, int]:
    """(domain, bus, device) of a CUDA device, from torch's device properties."""
    return getattr(props, "pci_domain_id", 0), getattr(props, "pci_bus_id", 0), getattr(props, "pci_device_id", 0)


def pci_mismatch(nvml_bus_id: str | bytes | None, props: CudaProps) -> str | None:
    """None when NVML's device (its `nvmlDeviceGetPciInfo(handle).busId`) sits at the CUDA device's PCI address, else
    why not: the one check that the handle names the GPU the run uses, whatever key found it."""
    cuda = "{:08X}:{:02X}:{:02X}".format(*cuda_pci_address(props))
    if nvml_bus_id is None:
        return f"no NVML device found (CUDA's PCI address {cuda})"
    shown = nvml_bus_id.decode() if isinstance(nvml_bus_id, bytes) else nvml_bus_id
    try:
        found = parse_pci_bus_id(nvml_bus_id)
    except ValueError:
        return f"NVML bus id {shown!r} is not DOMAIN:BUS:DEVICE.FUNCTION"
    return None if found == cuda_pci_address(props) else f"NVML {shown} != CUDA {cuda}"


def nvml_used_bytes(device: torch.device) -> int | None:
    """Memory in use on the whole device (all processes) per NVML, or None where NVML does not answer."""
    handle = nvml_handle(device)
    pynvml, _ = init_nvml()
    if handle is None or pynvml is None:
        return None
    try:
        return int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)
    except Exception:
        return None


def driver_version(device: torch.device) -> str | None:
    """The NVIDIA driver's version as NVML reports it, or None where NVML does not answer for `device`."""
    pynvml, _ = init_nvml()
    if nvml_handle(device) is None or pynvml is None:
        return None
    driver = pynvml.nvmlSystemGetDriverVersion()
    return driver.decode() if isinstance(driver, bytes) else driver
