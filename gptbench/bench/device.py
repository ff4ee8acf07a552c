"""Devices: resolving `--device`, synchronising, capability probes, and memory readings."""

from __future__ import annotations

import functools
import resource
import sys
from pathlib import Path

import torch

from gptbench.bench.support import native_bf16, supports_fused_adamw  # noqa: F401 - supports_fused_adamw: re-exported
from gptbench.errors import GptbenchError
from gptbench.reports.schema import Memory

GB = 1e9


def resolve_device(name: str) -> torch.device:
    """`auto|cpu|cuda|cuda:N|mps` -> a usable torch.device, or an error saying what was found instead."""
    key = name.strip().lower()
    if key == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", 0)
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if key == "cpu":
        return torch.device("cpu")
    if key == "mps":
        if not _mps_available():
            found = f"{sys.platform}, torch {torch.__version__}"
            raise GptbenchError(f"--device mps: MPS is not available on this machine ({found}); use --device cpu")
        return torch.device("mps")
    if key == "cuda" or key.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise GptbenchError(f"--device {name}: CUDA is not available ({why_no_cuda()}); use --device cpu or auto")
        index = 0
        if ":" in key:
            suffix = key.split(":", 1)[1]
            if not suffix.isdigit():
                raise GptbenchError(f"--device {name}: expected cuda:N with N a GPU index")
            index = int(suffix)
        count = torch.cuda.device_count()
        if index >= count:
            raise GptbenchError(f"--device {name}: this machine has {count} CUDA device(s), indices 0..{count - 1}")
        return torch.device("cuda", index)
    raise GptbenchError(f"--device {name}: unknown device; choose auto, cpu, cuda, cuda:N or mps")


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())


def why_no_cuda() -> str:
    if torch.version.cuda is None:
        return f"torch {torch.__version__} is a CPU-only build; install a CUDA build of torch"
    return f"torch {torch.__version__} was built for CUDA {torch.version.cuda}, but no GPU or driver was found"


def synchronize(device: torch.device) -> None:
    """Wait until all queued work on `device` has finished, so wall-clock time covers it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The x86 feature flags of this CPU (empty elsewhere)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                return frozenset(line.split(":", 1)[1].split())
    except OSError:
        pass
    return frozenset()


def has_fast_bf16(device: torch.device) -> bool:
    """Whether bf16 matmuls run faster than fp32: tensor cores on CUDA (sm80+); AVX512-BF16 or AMX on x86 CPUs
    (measured here with `gptbench peak`: an AVX512-BF16 EPYC does 2048^3 bf16 matmuls ~8x faster than fp32)."""
    if device.type == "cuda":
        return native_bf16(device)
    if device.type == "cpu":
        return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())
    return False


def reset_peak_memory(device: torch.device) -> None:
    """Start peak-memory accounting afresh for this run."""
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


class MemoryTracker:
    """Peak memory over a run: torch's counters on CUDA, sampled MPS memory, host RSS everywhere."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._mps_peak = 0
        self._mps_driver_peak = 0

    def sample(self) -> None:
        """Note the current MPS memory. MPS keeps no peak counter, and after `step()` returns the activations and
        gradients are already freed, so the run samples mid-step too (after each forward, `Trainer.after_forward`);
        the driver's figure keeps the allocator's cached blocks, so it also holds the step's high-water mark
        (torch.mps.driver_allocated_memory: "total GPU memory allocated by Metal driver", cache included)."""
        if self.device.type == "mps":
            self._mps_peak = max(self._mps_peak, torch.mps.current_allocated_memory())
            self._mps_driver_peak = max(self._mps_driver_peak, torch.mps.driver_allocated_memory())

    def read(self) -> Memory:
        memory = Memory(host_peak_rss_gb=round(_peak_rss_bytes() / GB, 3))
        if self.device.type == "cuda":
            memory.peak_allocated_gb = round(torch.cuda.max_memory_allocated(self.device) / GB, 3)
            memory.peak_reserved_gb = round(torch.cuda.max_memory_reserved(self.device) / GB, 3)
            used = nvml_used_bytes(self.device)
            memory.device_used_gb = None if used is None else round(used / GB, 3)
        elif self.device.type == "mps":
            self.sample()
            memory.peak_allocated_gb = round(self._mps_peak / GB, 3)
            memory.peak_reserved_gb = round(self._mps_driver_peak / GB, 3)
        return memory


def _peak_rss_bytes() -> int:
    """This process's peak resident memory. On Linux from VmHWM: getrusage's ru_maxrss carries over the parent's
    peak through fork and exec, so a worker started by a big process would report its parent's memory."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS reports bytes, Linux KiB


def nvml_handle(device: torch.device):  # noqa: ANN201 - pynvml's handle type is opaque
    """The NVML handle of a CUDA device, or None. Matched by UUID (`"GPU-" + str(props.uuid)`, the form
    nvmlDeviceGetHandleByUUID takes), else by PCI bus id: never by index, because NVML numbers every GPU of the
    machine and ignores CUDA_VISIBLE_DEVICES, so CUDA's device 0 can be NVML's device 3."""
    try:
        import pynvml

        pynvml.nvmlInit()
        props = torch.cuda.get_device_properties(device)
    except Exception:  # no driver, no library, or an NVML too old: NVML figures are optional
        return None
    for lookup, key in nvml_keys(props):
        try:
            return getattr(pynvml, lookup)(key)
        except Exception:  # noqa: S112 - try the next way of naming the device
            continue
    return None


def nvml_keys(props) -> list[tuple[str, str]]:  # noqa: ANN001 - torch's _CudaDeviceProperties
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


def nvml_used_bytes(device: torch.device) -> int | None:
    """Memory in use on the whole device (all processes) per NVML, or None where NVML does not answer."""
    handle = nvml_handle(device)
    if handle is None:
        return None
    try:
        import pynvml

        return int(pynvml.nvmlDeviceGetMemoryInfo(handle).used)
    except Exception:
        return None
