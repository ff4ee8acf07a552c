"""The CUDA, NVML and MPS paths, on a CPU: fakes stand in for the GPU (monkeypatched device names, capabilities,
streams and NVML answers) so that the first GPU or Mac user is not the first tester. Each test fails against the
code before its fix. The recorded torch/NVML behaviour each fake follows is named beside it."""

from __future__ import annotations

import dataclasses
import os
import sys
from types import SimpleNamespace

import pytest
import torch

from gptbench.bench.config import RunOptions, config_notes, resolve_config
from gptbench.bench.failure import describe_failure
from gptbench.errors import GptbenchError
from gptbench.hardware import capability as support

GPUS = {  # name, compute capability: what torch.cuda reports for each (device 1 is whatever the test sets)
    "h100": ("NVIDIA H100 80GB HBM3", (9, 0)),
    "v100": ("Tesla V100-SXM2-16GB", (7, 0)),
    "mig": ("NVIDIA A100-SXM4-80GB MIG 1g.10gb", (8, 0)),
}


@pytest.fixture
def fake_cuda(monkeypatch: pytest.MonkeyPatch):  # noqa: ANN201
    """A CUDA machine that is not there: every query answers from `gpus`, and any real CUDA initialisation (an
    allocation, a context) raises, so a test also proves that nothing touched the GPU."""
    gpus = {0: GPUS["h100"], 1: GPUS["h100"]}

    def index(device=None) -> int:  # noqa: ANN001
        return 0 if device is None else torch.device(device).index or 0 if not isinstance(device, int) else device

    def props(device=None) -> SimpleNamespace:  # noqa: ANN001
        name, (major, minor) = gpus[index(device)]
        return SimpleNamespace(name=name, major=major, minor=minor, total_memory=80 * 10**9, uuid="1234-abcd")

    def touched(*_: object, **__: object) -> None:
        raise AssertionError("the GPU was touched: CUDA was initialised")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: len(gpus))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: gpus[index(d)][0])
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: gpus[index(d)][1])
    monkeypatch.setattr(torch.cuda, "get_device_properties", props)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)  # what torch says on a V100, too
    monkeypatch.setattr(torch.cuda, "_lazy_init", touched)
    support._autocast_problem.cache_clear()
    return gpus


# 1. peak on cuda:N ------------------------------------------------------------------------------------------


def test_peak_times_cuda_n_with_events_on_that_devices_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch.cuda.Event.record() with no stream records on the current device's stream (torch docs), GPU 0's."""
    from gptbench.hardware import peak

    recorded = []

    class Event:
        def __init__(self, enable_timing: bool = False) -> None:
            pass

        def record(self, stream=None) -> None:  # noqa: ANN001
            recorded.append(None if stream is None else stream.device)

        def synchronize(self) -> None:
            pass

        def elapsed_time(self, other: object) -> float:
            return 2.0

    monkeypatch.setattr(torch.cuda, "Event", Event)
    monkeypatch.setattr(torch.cuda, "current_stream", lambda device=None: SimpleNamespace(device=torch.device(device)))
    seconds = peak._timer(torch.device("cuda", 1))(lambda: None, lambda: None)
    assert seconds == 0.002
    assert recorded == [torch.device("cuda", 1)] * 2


# 2. MPS peak memory --------------------------------------------------------------------------------------------


def test_mps_memory_is_sampled_where_the_step_peaks(monkeypatch: pytest.MonkeyPatch) -> None:
    """MPS has no peak counter; after step() the activations are freed. The trainer calls `after_forward` between
    forward and backward, and the tracker keeps the highest allocation and the driver's high-water mark."""
    from gptbench.bench.memory import MemoryTracker
    from gptbench.bench.step import Trainer
    from gptbench.data.sources import make_source
    from gptbench.studies.autobatch import _used_gb

    config = resolve_config(RunOptions(device="cpu", model="tiny", seq_len=16, micro_batch=2, grad_accum=2, steps=1))
    trainer = Trainer(config, make_source(config.data, 2, 16, torch.device("cpu"), 0))
    seen = []
    trainer.after_forward = lambda: seen.append(all(p.grad is None for p in trainer.params))
    trainer.step()
    assert seen == [True, False]  # once per micro-batch, the first before any backward ran

    memory = {"allocated": 0, "driver": 0}
    monkeypatch.setattr(torch.mps, "current_allocated_memory", lambda: memory["allocated"])
    monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: memory["driver"])
    tracker = MemoryTracker(torch.device("mps"))
    memory.update(allocated=6 * 10**9, driver=7 * 10**9)  # mid-step: activations alive
    tracker.sample()
    memory.update(allocated=2 * 10**9, driver=7 * 10**9)  # after the step: weights and optimizer state only
    m = tracker.read()
    assert (m.peak_allocated_gb, m.peak_reserved_gb) == (6.0, 7.0)
    run = SimpleNamespace(config=SimpleNamespace(device="mps"), result=SimpleNamespace(memory=m))
    assert _used_gb(run) == 7.0  # the batch search bounds what the Mac must hold


# 3. failures: the whole exception chain ----------------------------------------------------------------------


def _compile_failure(inner: Exception) -> Exception:
    """What torch.compile raises: BackendCompilerFailed from the inner error (torch/_dynamo/exc.py)."""
    from torch._dynamo.exc import BackendCompilerFailed

    try:
        try:
            raise inner
        except Exception as e:
            raise BackendCompilerFailed(lambda: None, e, None) from e
    except BackendCompilerFailed as outer:
        return outer


def test_an_oom_inside_a_compile_failure_is_oom_with_its_message() -> None:
    error = _compile_failure(torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 3.07 GiB"))
    assert str(error).startswith("backend=")
    assert describe_failure(error) == ("oom", "OutOfMemoryError: CUDA out of memory. Tried to allocate 3.07 GiB")


def test_a_missing_compiler_keeps_its_cause() -> None:
    error = _compile_failure(RuntimeError("Failed to find C compiler. Please specify via CC environment variable."))
    assert describe_failure(error) == (
        "error",
        "RuntimeError: Failed to find C compiler. Please specify via CC environment variable.",
    )


def test_a_failed_run_reports_the_innermost_cause(monkeypatch: pytest.MonkeyPatch) -> None:
    from gptbench.bench import runner
    from gptbench.bench.step import Trainer

    def fails(self: Trainer) -> torch.Tensor:
        raise _compile_failure(RuntimeError("ptxas fatal   : Unresolved extern function 'x'"))

    monkeypatch.setattr(Trainer, "step", fails)
    config = resolve_config(RunOptions(device="cpu", model="tiny", seq_len=16, micro_batch=1, steps=1, warmup_steps=0))
    result = runner.run_benchmark(config).result
    assert result.status == "error"
    assert result.error == "RuntimeError: ptxas fatal   : Unresolved extern function 'x'"


# 4. NVML clock-event reasons on a driver older than R535 -----------------------------------------------------


class FunctionNotFound(Exception):
    """pynvml's NVMLError_FunctionNotFound: the Python name exists, the driver's C symbol does not."""


def test_old_drivers_fall_back_to_the_throttle_reasons_call() -> None:
    from gptbench.bench.telemetry import GpuReader

    def missing(handle: object) -> int:
        raise FunctionNotFound("Function Not Found")

    nvml = SimpleNamespace(
        nvmlDeviceGetCurrentClocksEventReasons=missing,
        nvmlDeviceGetCurrentClocksThrottleReasons=lambda handle: 0x4,  # power cap
        nvmlDeviceGetPowerUsage=lambda h: 300_000,
        nvmlDeviceGetTotalEnergyConsumption=lambda h: 10**9,
        nvmlDeviceGetClockInfo=lambda h, c: 1980,
        nvmlDeviceGetTemperature=lambda h, s: 60,
        nvmlDeviceGetUtilizationRates=lambda h: SimpleNamespace(gpu=99),
    )
    reader = GpuReader(nvml, object())
    assert "reasons" not in reader.unsupported and reader.read().reasons == 0x4


# 5, 9, 12. native bf16 and TF32 by the run's compute capability; compile only where it works ----------------


def test_a_v100_defaults_to_fp16_without_tf32_and_bf16_is_flagged(fake_cuda: dict) -> None:
    fake_cuda[0] = GPUS["v100"]
    config = resolve_config(RunOptions(device="cuda", model="tiny"))
    assert (config.dtype, config.tf32, config.adamw) == ("fp16", False, "fused")
    bf16 = resolve_config(RunOptions(device="cuda", model="tiny", dtype="bf16"))
    assert any("has no bf16 tensor cores" in n and "emulates" in n for n in config_notes(bf16))


@pytest.mark.parametrize(
    # Eager here, as the fake GPU's run resolves: the memory model (with the allocator's slack and context measured on the
    # H200) puts micro-batch 32 at 36.1 GB, over 40 GB less 10%.
    ("memory_gb", "gpu", "batch"), [(80, "h100", 64), (141, "h100", 64), (40, "h100", 16), (24, "h100", 16), (16, "v100", 8)]
)
def test_the_cuda_default_micro_batch_is_sized_by_the_gpus_memory(
    fake_cuda: dict, monkeypatch: pytest.MonkeyPatch, memory_gb: int, gpu: str, batch: int
) -> None:
    """124M at seq 1024: 64 (llm.c's) where the memory model fits it in the GPU's memory less 10%, else the largest
    power of two below that fits; the reason is in the run's notes. A --batch given keeps its own."""
    fake_cuda[0] = GPUS[gpu]
    props = torch.cuda.get_device_properties
    monkeypatch.setattr(
        torch.cuda,
        "get_device_properties",
        lambda d=None: SimpleNamespace(**{**vars(props(d)), "total_memory": memory_gb * 10**9}),
    )
    config = resolve_config(RunOptions(device="cuda"))
    assert config.micro_batch == batch
    assert any(n.startswith(f"micro-batch {batch} (the default here") and f"{memory_gb} GB" in n for n in config_notes(config))
    given = resolve_config(RunOptions(device="cuda", micro_batch=16))
    assert given.micro_batch == 16 and not any(n.startswith("micro-batch") for n in config_notes(given))


def test_the_cpu_default_micro_batch_is_unchanged() -> None:
    config = resolve_config(RunOptions(device="cpu", allocator="system"))
    assert config.micro_batch == 1 and config.micro_batch_basis is None


def test_bf16_is_decided_by_the_runs_device_not_the_current_one(fake_cuda: dict) -> None:
    fake_cuda[1] = GPUS["v100"]  # GPU 0 (current) is an H100, the run is on a V100
    assert resolve_config(RunOptions(device="cuda:1", model="tiny")).dtype == "fp16"
    assert resolve_config(RunOptions(device="cuda:0", model="tiny")).dtype == "bf16"


def test_fp32_on_a_gpu_without_tf32_gets_the_fp32_peak(fake_cuda: dict) -> None:
    from gptbench.bench.runner import peak_for

    fake_cuda[0] = GPUS["v100"]
    config = dataclasses.replace(resolve_config(RunOptions(device="cuda", model="tiny", dtype="fp32")), tf32=True)
    peak, source, note = peak_for(config)
    assert peak == 15.7 and "dense fp32" in source and note is None


def test_compile_is_on_by_default_only_where_it_works(fake_cuda: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(support, "_has_triton", lambda: False)
    config = resolve_config(RunOptions(device="cuda", model="tiny"))
    assert config.compile is False
    assert any("torch.compile is off" in n and "Triton is not installed" in n for n in config_notes(config))
    monkeypatch.setattr(support, "_has_triton", lambda: True)
    monkeypatch.setattr(support, "c_compiler", lambda: "/usr/bin/gcc")
    monkeypatch.setattr(support, "python_headers", lambda: None)
    assert "Python.h" in support.compile_problem(torch.device("cuda", 0))
    monkeypatch.setattr(support, "python_headers", lambda: "/usr/include/python3/Python.h")
    assert resolve_config(RunOptions(device="cuda", model="tiny")).compile is True


def test_compile_is_refused_where_dynamo_is_not_supported(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch._dynamo

    monkeypatch.setattr(torch._dynamo, "is_dynamo_supported", lambda: False)
    assert "no Dynamo support" in support.compile_problem(torch.device("cpu"))


# 6, 10. MPS autocast and compile probed --------------------------------------------------------------------


def test_autocast_that_does_nothing_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch 2.5 on MPS disables bf16 autocast with only a warning: the matmul comes out fp32."""
    import contextlib

    support._autocast_problem.cache_clear()
    monkeypatch.setattr(torch, "autocast", lambda *a, **k: contextlib.nullcontext())
    problem = support.autocast_problem(torch.device("cpu"), "bf16")
    assert problem is not None and "ignores torch.bfloat16 autocast" in problem and "torch.float32" in problem
    support._autocast_problem.cache_clear()


def test_bf16_on_an_mps_that_cannot_autocast_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    from gptbench.hardware import device

    support._autocast_problem.cache_clear()
    monkeypatch.setattr(device, "_mps_available", lambda: True)
    with pytest.raises(GptbenchError, match=r"--dtype bf16: torch .* cannot autocast to torch.bfloat16 on MPS"):
        resolve_config(RunOptions(device="mps", model="tiny", dtype="bf16"))
    support._autocast_problem.cache_clear()


def test_ladder_rungs_that_cannot_run_on_mps_are_skipped_with_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    """The compile probe fails on purpose (a compiled function that raises, as Inductor does where it has no MPS
    backend), on tensors that exist: on Linux, without this, it failed only because there is no MPS device at all."""
    from gptbench.bench.config import BenchConfig
    from gptbench.model.config import GPTConfig
    from gptbench.studies.ablate import plan_ladder

    def compiled(fn):  # noqa: ANN001, ANN202 - torch.compile's shape
        def run(*_: object) -> None:
            raise RuntimeError("Inductor has no MPS backend in this torch (raised on purpose)")

        return run

    randn = torch.randn
    monkeypatch.setattr(torch, "compile", compiled)
    monkeypatch.setattr(torch, "randn", lambda *size, device=None, **kw: randn(*size, **kw))  # a tensor, wherever asked
    support._autocast_problem.cache_clear()
    config = BenchConfig(model=GPTConfig.from_name("tiny"), device="mps", seq_len=16, micro_batch=1)
    skipped = {rung.name: rung.skipped for rung in plan_ladder(config)}
    expected = "torch.compile failed on MPS: RuntimeError: Inductor has no MPS backend in this torch (raised on purpose)"
    assert skipped["+ torch.compile"] == expected
    assert "autocast" in skipped["+ bf16 autocast"]
    assert skipped["+ TF32 matmuls"].startswith("TF32 is a mode of NVIDIA tensor cores")
    support._autocast_problem.cache_clear()


# 7. NVML by UUID, never by index ----------------------------------------------------------------------------


def test_nvml_is_matched_by_uuid_not_by_index(fake_cuda: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """NVML's indices ignore CUDA_VISIBLE_DEVICES (NVML API reference, nvmlDeviceGetHandleByIndex)."""
    from gptbench.hardware.nvml import nvml_handle

    def by_index(i: int) -> None:
        raise AssertionError("NVML index used")

    fake = SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlDeviceGetHandleByUUID=lambda key: ("uuid", key),
        nvmlDeviceGetHandleByPciBusId=lambda key: ("pci", key),
        nvmlDeviceGetHandleByIndex=by_index,
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    assert nvml_handle(torch.device("cuda", 1)) == ("uuid", "GPU-1234-abcd")


class ThreeGpuNvml:
    """NVML on a machine of three GPUs: it numbers them all and ignores CUDA_VISIBLE_DEVICES (NVML API reference,
    nvmlDeviceGetHandleByIndex); a handle here is the physical index."""

    GPUS = (("GPU-aaaa", "00000000:1B:00.0"), ("GPU-bbbb", "00000000:2C:00.0"), ("GPU-cccc", "00000000:3D:00.0"))

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's names
        pass

    def nvmlDeviceGetHandleByIndex(self, i: int) -> int:  # noqa: N802
        return i

    def nvmlDeviceGetHandleByUUID(self, uuid: str) -> int:  # noqa: N802
        return [u for u, _ in self.GPUS].index(uuid)

    def nvmlDeviceGetHandleByPciBusId(self, bus_id: str) -> int:  # noqa: N802
        return [b for _, b in self.GPUS].index(bus_id)

    def nvmlDeviceGetPciInfo(self, handle: int) -> SimpleNamespace:  # noqa: N802
        return SimpleNamespace(busId=self.GPUS[handle][1])


@pytest.mark.parametrize("with_uuid", [True, False])
def test_nvml_handle_sits_at_the_cuda_devices_pci_address_with_reordered_visible_devices(
    fake_cuda: dict, monkeypatch: pytest.MonkeyPatch, with_uuid: bool
) -> None:
    """CUDA_VISIBLE_DEVICES=2,0: CUDA's device 0 is physical GPU 2 and device 1 physical GPU 0 (CUDA enumerates the
    listed devices in that order). The handle gptbench finds (by UUID, or by PCI bus id where torch gives no UUID)
    sits at each CUDA device's PCI address; a lookup by index would not, and the PCI comparison says so."""
    from gptbench.hardware.nvml import nvml_handle, pci_mismatch

    nvml = ThreeGpuNvml()
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "2,0")
    monkeypatch.setitem(sys.modules, "pynvml", nvml)

    def props(device=None) -> SimpleNamespace:  # noqa: ANN001
        physical = int(os.environ["CUDA_VISIBLE_DEVICES"].split(",")[torch.device(device).index or 0])
        uuid, bus = nvml.GPUS[physical]
        uuid = uuid.removeprefix("GPU-") if with_uuid else None  # torch's props.uuid has no "GPU-" prefix
        return SimpleNamespace(uuid=uuid, pci_domain_id=0, pci_bus_id=int(bus[9:11], 16), pci_device_id=0)

    monkeypatch.setattr(torch.cuda, "get_device_properties", props)
    for i in (0, 1):
        device = torch.device("cuda", i)
        handle = nvml_handle(device)
        assert pci_mismatch(nvml.nvmlDeviceGetPciInfo(handle).busId, props(device)) is None
    by_index = nvml.nvmlDeviceGetPciInfo(nvml.nvmlDeviceGetHandleByIndex(0)).busId
    assert pci_mismatch(by_index, props(torch.device("cuda", 0))) == "NVML 00000000:1B:00.0 != CUDA 00000000:3D:00"


# 8. a launching process never touches the GPU ---------------------------------------------------------------


def test_resolving_a_cuda_config_opens_no_cuda_context(fake_cuda: dict) -> None:
    """`_lazy_init` raises in the fake: choosing fused AdamW (and everything else) must not allocate."""
    config = resolve_config(RunOptions(device="cuda", model="tiny"))
    assert config.adamw == "fused" and config.dtype == "bf16" and config.tf32 is True


# 11. MIG slices -------------------------------------------------------------------------------------------------


def test_a_mig_slice_gets_no_mfu_against_the_whole_gpus_peak(fake_cuda: dict) -> None:
    from gptbench.bench.runner import peak_for

    fake_cuda[0] = GPUS["mig"]
    peak, source, note = peak_for(resolve_config(RunOptions(device="cuda", model="tiny")))
    assert peak is None and source is None and "MIG slice (1g.10gb)" in note


# 13. the ladder's batch fits its fp32 baseline ------------------------------------------------------------------


def test_the_ladder_batch_is_chosen_so_that_the_baseline_fits() -> None:
    from gptbench.bench.config import BenchConfig
    from gptbench.model.config import GPTConfig
    from gptbench.studies.ablate import fit_baseline_batch

    config = BenchConfig(model=GPTConfig.from_name("124m").padded(), device="cuda:0", seq_len=1024, micro_batch=16)
    fitted, why = fit_baseline_batch(config, 24 * 0.9)  # a 24 GB card less 10% headroom
    assert fitted.micro_batch < 16 and f"ladder micro-batch {fitted.micro_batch}, not 16" in why
    assert fit_baseline_batch(config, 1000.0) == (config, None)
    tiny, _ = fit_baseline_batch(dataclasses.replace(config, micro_batch=2), 0.001)
    assert tiny.micro_batch == 1  # never below one
