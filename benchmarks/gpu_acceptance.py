"""The GPU acceptance check: what a developer with an NVIDIA GPU runs first, as one prepared call.

    PYTHONPATH=. python benchmarks/gpu_acceptance.py --out DIR            # the lean default: <= 5 min on one H200
    PYTHONPATH=. python benchmarks/gpu_acceptance.py --out DIR --full     # the whole old suite (about 10-15 min)
    bash benchmarks/gpu_session.sh "$OUT"      # a GPU session's ONE prepared command: this check, then chapter 5
                                               # and harness_overhead.py if time allows, each under `timeout`

Verdicts, each from a step in its own process group (a step that times out is killed with its children):
  compile-prerequisites  torch.compile can be on for cuda:0 (Dynamo, Triton, a C compiler, Python.h); said up front
  nvml-pci        NVML's device for cuda:0 sits at CUDA's PCI address (nvmlDeviceGetPciInfo.busId against
                  props.pci_domain_id/pci_bus_id/pci_device_id), not merely the UUID it was looked up by
  doctor          `gptbench doctor --json` exits 0 with no failed check
  peak-bf16       `gptbench peak`: best bf16 matmul >= 0.6 x the datasheet's dense bf16 peak
  peak-bandwidth  `gptbench peak`: copy bandwidth >= 0.7 x the datasheet's memory bandwidth
  graph           the default compiled run: compile on (positive control: Dynamo captured a graph in warm-up), and
                  from torch._dynamo.utils.counters no graph break and no new graph after warm-up
  harness         the harness's 20 timed steps against CUDA events around 20 steps of the same trainer: within 3%
  attention       the kernel the profiler shows for SDPA: flash or cuDNN, not the math fallback
  auto-batch      the largest of 128, 64, 32 that fits an eager probe (--batch auto's probe) runs compiled, within
                  the memory bound the probe used (`--batch auto` itself, from 1 with 3 candidates: --full)
  ddp-scaling     with 2+ GPUs, `run --nproc 2 --scaling`: efficiency >= 0.85 (skipped with one GPU)
  pytest-gpu      `pytest -m gpu` (tiny models only)
  suite           --full only: `gptbench suite`, timed (target: under 8 minutes); peak and auto-batch judged from it
  budget          every step ran before the --budget-s deadline (a step that would not fit is a SKIP)

The budget, planned from counted compilations, then corrected by the first GPU run (one H200, torch 2.11.0+cu130,
2026-12-04; benchmarks/results/h200-2026-12-04/): one cold torch.compile of GPT-2 124M forward+backward took 24.7 s
(the default run's warmup_s) and 25.6 s (batch 64). That run's doctor took 82 s, 60.2 s of it compiling a small
function for the CPU, a device the check is not about: doctor now runs with --device cuda, planned at the 22 s that
remain. Its pytest -m gpu was cut at the deadline; alone it took 85.9 s (9 passed).

  step             124M compiles         processes                     planned s   own timeout s   measured s
  prerequisites    0                     0 (this process)                      1               -            0
  nvml-pci         0                     0 (this process)                      1               -            0
  doctor           0 (a tiny function)   1 (--device cuda)                    30             120   82 (all devices)
  peak             0                     1                                    15              90           12
  default step     1 cold                1 (graph, harness, attention
                                           and the run's report)              50             240           45
  auto-batch       1 cold (new shape)    1 + 1-3 eager probes + 1 run         90             240           87
  pytest-gpu       0 (2 tiny)            1 + 1 torchrun                       95             150    86 (alone)
  ddp-scaling      1 (2+ GPUs only)      1 + 1 baseline + 2 ranks          (110)             300            -
  one H200                 2 of at most 3                                    282   --budget-s 300

(was: about six cold 124M compiles and about 30 processes, 500-830 s.) A step starts only when the time left before
the deadline covers its plan; otherwise it is a SKIP with the reason. acceptance.json is rewritten (atomically)
after every step, so a run killed from outside still holds every verdict reached. Files in DIR stay few (at most 8,
chapter 5's included) so that a remote run can send them all back: acceptance.json, acceptance.log (every step's
output) and the reports (peak, default, auto-batch, ddp). Without CUDA: one line, exit 2. Exit 0 only when nothing
failed.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gptbench.atomic import write_bytes_atomic  # noqa: E402 - torch-free, importable before the CUDA check

RESULT_PREFIX = "GPTBENCH-ACCEPTANCE "  # the stdout line of an inner step that carries its result
HARNESS_TOLERANCE = 0.03
PEAK_BF16_SHARE, PEAK_BANDWIDTH_SHARE = 0.6, 0.7
# Two ranks over NVLink all-reduce ~0.5 GB of fp32 gradients in ~1-2 ms, overlapped with a ~16 ms backward: near
# linear. Below 0.85 something is wrong (no overlap, a PCIe-only pair, contention). The scaling model `estimate`
# and `plan` use when unmeasured (predict/scaling.py, DDP_FACTOR from one published same-program pair) is lower and
# not validated: a measured pair here is the evidence it lacks.
DDP_EFFICIENCY = 0.85
AUTO_BATCH_SIZES = (128, 64, 32)  # H200: 128 fits (one probe); smaller GPUs step down; above the default 16
SUITE_TARGET_S = 480
DEFAULT_BUDGET_S, FULL_BUDGET_S = 300, 1800
KILL_GRACE_S = 5.0  # SIGTERM first, SIGKILL after this
# torchrun starts each rank in a session of its own (torch/distributed/elastic/multiprocessing/subprocess_handler/
# subprocess_handler.py: start_new_session=True), out of reach of our killpg, and on SIGTERM gives its ranks up to 30 s
# (api.py: _close(timeout=30)) before it kills them: a step that launches torchrun waits that long before SIGKILL.
TORCHRUN_GRACE_S = 35.0
TORCHRUN_STEPS = ("ddp", "pytest -m gpu")
# Each step's (planned seconds, own timeout): the budget table in the docstring, as data.
PLAN = {
    "doctor": (30, 120),
    "peak": (15, 90),
    "default step": (50, 240),
    "auto-batch": (90, 240),
    "pytest -m gpu": (95, 150),
    "ddp": (110, 300),
    "suite": (SUITE_TARGET_S, 600),  # --full only
}
IN_PROCESS_S = 2  # compile-prerequisites and nvml-pci, in this process


@dataclass
class Result:
    name: str
    status: str  # PASS | FAIL | SKIP
    detail: str
    seconds: float = 0.0
    planned_s: float | None = None


# --- judging (pure: tests/test_acceptance.py feeds them recorded or faked outputs) -----------------------------


def judge_prerequisites(problem: str | None) -> tuple[str, str]:
    """torch.compile can be on (gptbench.hardware.capability.compile_problem found nothing missing)."""
    if problem:
        return "FAIL", f"torch.compile would be off: {problem}; the compiled checks below measure eager code"
    return "PASS", "Dynamo, Triton, a C compiler and Python.h are all there: the default run compiles"


def judge_doctor(code: int, doctor: dict | None) -> tuple[str, str]:
    """Exit 0, JSON on stdout, and no check with status fail."""
    if doctor is None:
        return "FAIL", f"no JSON on stdout (exit {code})"
    failed = [f"{c['area']} {c['name']}: {c.get('value', '')}" for c in doctor.get("checks", []) if c["status"] == "fail"]
    if failed or code != 0:
        return "FAIL", "; ".join(failed) or f"exit {code}"
    return "PASS", f"{len(doctor.get('checks', []))} checks, none failed"


def judge_nvml(nvml_bus_id: str | bytes | None, domain: int, bus: int, device: int) -> tuple[str, str]:
    """The NVML device's PCI address is CUDA device 0's: the handle names the GPU the runs use."""
    from gptbench.hardware.nvml import pci_mismatch  # imports torch: kept out of the script's start

    problem = pci_mismatch(nvml_bus_id, SimpleNamespace(pci_domain_id=domain, pci_bus_id=bus, pci_device_id=device))
    if problem is not None:
        return "FAIL", problem.replace("no NVML device found", "no NVML device found for cuda:0")
    shown = nvml_bus_id.decode() if isinstance(nvml_bus_id, bytes) else nvml_bus_id
    return "PASS", f"NVML {shown} == CUDA {domain:08X}:{bus:02X}:{device:02X}"


def judge_graph(step: dict) -> tuple[str, str]:
    """Compile on and Dynamo active in warm-up; no graph break; no new graph after warm-up (dynamo_counts)."""
    if not step.get("compile"):
        return "FAIL", f"compile is off in the measured config ({step.get('compile_problem') or 'resolve_config chose eager'})"
    counts = step.get("counts") or {}
    warm, last = counts.get("warmup"), counts.get("checks") or counts.get("measured")
    if warm is None or last is None:
        return "FAIL", f"the measured steps never began ({step.get('error') or 'see acceptance.log'})"
    if warm["unique_graphs"] < 1:
        return "FAIL", "compile is on but Dynamo captured no graph in warm-up (unique_graphs 0): the model ran eagerly"
    breaks, new = last["graph_breaks"], last["unique_graphs"] - warm["unique_graphs"]
    if breaks or new:
        why = "; ".join(last.get("graph_break_reasons", [])[:2])
        return "FAIL", f"{breaks} graph break(s), {new} new graph(s) after warm-up" + (f"; {why[:200]}" if why else "")
    return "PASS", f"compiled ({warm['unique_graphs']} graph in warm-up); no graph break; no new graph after warm-up"


def judge_harness(harness_s: list[float], events_s: float) -> tuple[str, str]:
    """The harness's total over its steps against CUDA events around as many steps (median of the harness rounds)."""
    totals = sorted(harness_s)
    harness = totals[len(totals) // 2]
    gap = harness / events_s - 1
    status = "PASS" if abs(gap) <= HARNESS_TOLERANCE else "FAIL"
    return status, f"harness {harness:.4f} s vs CUDA events {events_s:.4f} s over the same steps: {gap:+.2%}"


FAST_ATTENTION = ("flash", "cudnn")
SLOW_ATTENTION = ("_scaled_dot_product_attention_math", "efficient_attention", "fmha_cutlass")


def judge_attention(names: list[str]) -> tuple[str, str]:
    """Flash or cuDNN attention among the profiled ops and kernels, and no math fallback."""
    lowered = [n.lower() for n in names]
    fast = sorted({n for n in names if any(k in n.lower() for k in FAST_ATTENTION)})
    slow = sorted({n for n, low in zip(names, lowered, strict=True) if any(k in low for k in SLOW_ATTENTION)})
    if fast and not slow:
        return "PASS", "; ".join(fast[:3])
    return "FAIL", f"fast: {', '.join(fast[:3]) or 'none'}; fallback: {', '.join(slow[:3]) or 'none'}"


def judge_share(name: str, measured: float | None, datasheet: float | None, needed: float, unit: str) -> Result:
    """A measured figure against the datasheet's: PASS when it reaches `needed` of it."""
    if not datasheet or measured is None:
        return Result(name, "FAIL", f"measured {measured}, datasheet {datasheet}: nothing to compare")
    share = measured / datasheet
    detail = f"{measured:,.0f} of {datasheet:,.0f} {unit} ({share:.0%}; needs {needed:.0%})"
    return Result(name, "PASS" if share >= needed else "FAIL", detail)


def judge_peak(peak: dict, bf16_datasheet: float | None, bandwidth_datasheet: float | None) -> list[Result]:
    """The measured bf16 matmul peak and copy bandwidth against the datasheet's."""
    best = (peak.get("best_tflops") or {}).get("bf16")
    return [
        judge_share("peak-bf16", best, bf16_datasheet, PEAK_BF16_SHARE, "TFLOP/s"),
        judge_share("peak-bandwidth", peak.get("bandwidth_gbs"), bandwidth_datasheet, PEAK_BANDWIDTH_SHARE, "GB/s"),
    ]


def judge_largest_batch(runs: list[dict], bound_gb: float | None = None) -> tuple[str, str]:
    """The largest micro-batch's run ended ok, compiled, and (given the probes' bound) within that memory bound:
    the premise of `--batch auto` (what fits eagerly fits compiled)."""
    if not runs:
        return "FAIL", "no run at the largest batch"
    largest = max(runs, key=lambda r: r["config"]["micro_batch"])
    c, r = largest["config"], largest["result"]
    reserved = (r.get("memory") or {}).get("peak_reserved_gb")
    detail = f"micro-batch {c['micro_batch']}: {r['status']}, {'compiled' if c['compile'] else 'eager'}"
    if r.get("tokens_per_sec"):
        detail += f", {r['tokens_per_sec']:,.0f} tok/s"
    over = bound_gb is not None and (reserved is None or reserved > bound_gb)
    if bound_gb is not None:
        detail += f", {reserved if reserved is not None else '?'} GB reserved of the {bound_gb:.1f} GB bound"
    ok = r["status"] == "ok" and c["compile"] and not over
    return ("PASS" if ok else "FAIL"), detail + (f" ({r['error']})" if r.get("error") else "")


def judge_ddp(code: int, report: dict | None) -> tuple[str, str]:
    """A measured scaling efficiency of at least DDP_EFFICIENCY, not merely any value."""
    found = [r["result"].get("scaling_efficiency") for r in (report or {}).get("runs", [])]
    found = [e for e in found if e is not None]
    if not found:
        return "FAIL", f"no scaling efficiency in the report (exit {code})"
    eff = found[0]
    return ("PASS" if eff >= DDP_EFFICIENCY else "FAIL"), f"{eff:.1%} of linear at 2 processes (needs {DDP_EFFICIENCY:.0%})"


def judge_pytest(code: int, stdout: str) -> tuple[str, str]:
    """Exit 0 with at least one test passed (all GPU tests skipped is not a pass)."""
    summary = stdout.strip().splitlines()[-1] if stdout.strip() else f"exit {code}"
    return ("PASS" if code == 0 and " passed" in f" {summary}" else "FAIL"), summary


def json_from_stdout(stdout: str) -> dict | None:
    """The JSON document a command printed on stdout (stderr never mixes in), or the RESULT_PREFIX line of an
    inner step; None when there is none."""
    for line in reversed(stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX) :])
    try:
        start, end = stdout.index("{"), stdout.rindex("}")
        return json.loads(stdout[start : end + 1])
    except ValueError:  # no braces, or not JSON between them (json.JSONDecodeError is a ValueError)
        return None


# --- running a step: its own process group, killed whole on timeout ---------------------------------------------


@dataclass(frozen=True)
class Ran:
    code: int  # 124 when it timed out
    stdout: str
    stderr: str
    seconds: float


def stop_group(pgid: int, grace_s: float) -> None:
    """SIGTERM to the whole group, then SIGKILL to whatever is left after `grace_s`: a step's workers (a run's
    child, torchrun's ranks) hold the GPU and must not outlive it."""
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    try:
        os.killpg(pgid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def run_group(cmd: list[str], timeout_s: float, env: dict | None = None, grace_s: float = KILL_GRACE_S) -> Ran:
    """Run `cmd` from the checkout in a new session (its own process group); on timeout the group is stopped."""
    start = time.monotonic()
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1", **(env or {})},
    )  # fmt: skip
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
        code = proc.returncode
    except subprocess.TimeoutExpired:
        stop_group(proc.pid, grace_s)
        try:  # a process that left the group could keep the pipes open: do not wait for it forever
            stdout, stderr = proc.communicate(timeout=grace_s + 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            stdout, stderr = "", ""
        code, stderr = 124, (stderr or "") + f"\n(stopped after {timeout_s:.0f} s, with its whole process group)"
    except BaseException:  # SIGTERM from outside (exit_on_sigterm) or Ctrl-C: the step must not outlive us
        stop_group(proc.pid, grace_s)
        raise
    return Ran(code, stdout or "", stderr or "", time.monotonic() - start)


@dataclass
class Acceptance:
    """The verdicts so far and the deadline; acceptance.json is rewritten after every step."""

    out: Path
    budget_s: float
    mode: str
    gpu: str = ""
    results: list[Result] = field(default_factory=list)
    details: dict = field(default_factory=dict)  # the doctor's checks, the default step's numbers, the probes
    start: float = field(default_factory=time.monotonic)
    late: list[str] = field(default_factory=list)  # steps skipped or stopped by the deadline

    def add(self, *results: Result) -> None:
        self.results.extend(results)
        self.save()

    def save(self, finished: bool = False) -> None:
        data = {
            "gpu": self.gpu, "mode": self.mode, "budget_s": self.budget_s, "finished": finished,
            "elapsed_s": round(time.monotonic() - self.start, 1),
            "results": [asdict(r) for r in self.results], **self.details,
        }  # fmt: skip
        write_bytes_atomic(self.out / "acceptance.json", [json.dumps(data, indent=1).encode()])

    def left_s(self) -> float:
        return self.budget_s - (time.monotonic() - self.start)

    def step(self, title: str, cmd: list[str], names: list[str], cap_s: float | None = None, **env: str) -> Ran | None:
        """Run one step if the time left covers its plan (else SKIP `names`); its output goes to acceptance.log."""
        planned_s, cap_s = PLAN[title][0], cap_s or PLAN[title][1]
        left = self.left_s()
        if left < planned_s:
            self.late.append(title)
            why = f"{max(left, 0):.0f} s left of --budget-s {self.budget_s:.0f}; this step plans {planned_s:.0f} s"
            self.add(*[Result(n, "SKIP", why, planned_s=planned_s) for n in names])
            return None
        grace = TORCHRUN_GRACE_S if title in TORCHRUN_STEPS else KILL_GRACE_S
        ran = run_group(cmd, min(cap_s, left), env, grace)
        if ran.code == 124 and left < cap_s:
            self.late.append(title)
        with (self.out / "acceptance.log").open("a") as f:
            f.write(f"\n===== {title}: {' '.join(cmd)} -> exit {ran.code} in {ran.seconds:.0f} s =====\n")
            f.write(f"--- stdout ---\n{ran.stdout}\n--- stderr ---\n{ran.stderr}\n")
        return ran


def exit_on_sigterm() -> None:
    """SIGTERM (`timeout`, a session's end) becomes SystemExit, so that the running step's group is stopped too;
    acceptance.json already holds every verdict reached."""
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))


# --- the steps ---------------------------------------------------------------------------------------------------


def datasheet(name: str) -> tuple[float | None, float | None]:
    from gptbench.hardware.specs import match_device

    spec = match_device(name)
    return (spec.bf16_tflops, spec.memory_bw_gbs) if spec else (None, None)


def report_path(stdout: str) -> Path | None:
    """The `report: PATH` line a gptbench command prints last."""
    found = [line.split(":", 1)[1].strip() for line in stdout.splitlines() if line.startswith("report:")]
    return Path(found[-1]) if found else None


def read_json(path: str | Path | None) -> dict | None:
    return json.loads(Path(path).read_text()) if path and Path(path).is_file() else None


def nvml_result() -> Result:
    """nvml-pci in this process: no GPU work, only NVML and CUDA's device properties."""
    import torch

    from gptbench.hardware.nvml import nvml_handle

    props = torch.cuda.get_device_properties(0)
    ids = (getattr(props, "pci_domain_id", 0), getattr(props, "pci_bus_id", 0), getattr(props, "pci_device_id", 0))
    try:
        import pynvml

        handle = nvml_handle(torch.device("cuda", 0))
        bus_id = pynvml.nvmlDeviceGetPciInfo(handle).busId if handle is not None else None
    except Exception as e:  # noqa: BLE001 - no nvidia-ml-py or no driver: the verdict says which
        return Result("nvml-pci", "FAIL", f"NVML unavailable: {type(e).__name__}: {e}")
    return Result("nvml-pci", *judge_nvml(bus_id, *ids))


def doctor_step(acc: Acceptance) -> None:
    ran = acc.step("doctor", [sys.executable, "-m", "gptbench", "doctor", "--json", "--device", "cuda"], ["doctor"])
    if ran is not None:
        doctor = json_from_stdout(ran.stdout)
        acc.details["doctor"] = doctor
        acc.add(Result("doctor", *judge_doctor(ran.code, doctor), ran.seconds, PLAN["doctor"][0]))


def peak_step(acc: Acceptance) -> None:
    cmd = [sys.executable, "-m", "gptbench", "peak", "--device", "cuda", "--budget-s", "1", "--label", "acceptance-peak"]
    ran = acc.step("peak", [*cmd, "--out", str(acc.out)], ["peak-bf16", "peak-bandwidth"])
    if ran is None:
        return
    peak = (read_json(report_path(ran.stdout)) or {}).get("peak")
    results = (
        judge_peak(peak, *datasheet(acc.gpu)) if peak else [Result("peak-bf16", "FAIL", f"no peak report (exit {ran.code})")]
    )
    results[0].seconds, results[0].planned_s = ran.seconds, PLAN["peak"][0]
    acc.add(*results)


def default_step(acc: Acceptance) -> None:
    names = ["graph", "harness", "attention"]
    cmd = [sys.executable, __file__, "--inner", "default-step", "--out", str(acc.out)]
    # TORCH_LOGS only puts the reasons into acceptance.log for a reader; the verdict comes from Dynamo's counters.
    ran = acc.step("default step", cmd, names, TORCH_LOGS="graph_breaks,recompiles")
    if ran is None:
        return
    step = json_from_stdout(ran.stdout) or {"error": f"exit {ran.code}"}
    acc.details["default_step"] = step
    results = [Result("graph", *judge_graph(step), ran.seconds, PLAN["default step"][0])]
    if "events_s" in step:
        results.append(Result("harness", *judge_harness(step["harness_s"], step["events_s"])))
        results.append(Result("attention", *judge_attention(step.pop("profile_names"))))
    else:
        results += [Result(n, "FAIL", f"the default step did not finish (exit {ran.code})") for n in names[1:]]
    acc.add(*results)


def auto_batch_step(acc: Acceptance) -> None:
    cmd = [sys.executable, __file__, "--inner", "auto-batch", "--out", str(acc.out)]
    ran = acc.step("auto-batch", cmd, ["auto-batch"])
    if ran is None:
        return
    found = json_from_stdout(ran.stdout) or {}
    acc.details["auto_batch"] = found
    report = read_json(found.get("report"))
    if report:
        status, detail = judge_largest_batch(report["runs"], found["bound_gb"])
    else:
        status, detail = "FAIL", f"no compiled run ({found.get('why') or f'exit {ran.code}'})"
    acc.add(Result("auto-batch", status, detail, ran.seconds, PLAN["auto-batch"][0]))


def ddp_step(acc: Acceptance, gpus: int) -> None:
    if gpus < 2:
        acc.add(Result("ddp-scaling", "SKIP", f"{gpus} GPU: DDP needs two or more"))
        return
    cmd = [sys.executable, "-m", "gptbench", "run", "--device", "cuda", "--nproc", "2", "--scaling", "--steps", "10"]
    ran = acc.step("ddp", [*cmd, "--label", "acceptance-ddp", "--out", str(acc.out)], ["ddp-scaling"])
    if ran is not None:
        acc.add(Result("ddp-scaling", *judge_ddp(ran.code, read_json(report_path(ran.stdout))), ran.seconds, PLAN["ddp"][0]))


def pytest_step(acc: Acceptance) -> None:
    cmd = [sys.executable, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "tests"]
    ran = acc.step("pytest -m gpu", cmd, ["pytest-gpu"], None if acc.mode == "default" else 600)
    if ran is not None:
        acc.add(Result("pytest-gpu", *judge_pytest(ran.code, ran.stdout), ran.seconds, PLAN["pytest -m gpu"][0]))


def suite_step(acc: Acceptance, suite_timeout_s: float) -> None:
    """--full: the whole `gptbench suite` (peak, default, --batch auto with its candidates, the ladder)."""
    names = ["suite", "peak-bf16", "auto-batch"]
    cmd = [sys.executable, "-m", "gptbench", "suite", "--device", "cuda", "--out", str(acc.out)]
    ran = acc.step("suite", cmd, names, suite_timeout_s)
    if ran is None:
        return
    status = "PASS" if ran.code == 0 and ran.seconds <= SUITE_TARGET_S else "FAIL"
    results = [Result("suite", status, f"exit {ran.code} after {ran.seconds:,.0f} s (target {SUITE_TARGET_S} s)", ran.seconds)]
    peak = newest(acc.out, "suite-peak")
    results += (
        judge_peak(peak["peak"], *datasheet(acc.gpu))
        if peak and peak.get("peak")
        else [Result("peak-bf16", "FAIL", "no peak report")]
    )
    batch = newest(acc.out, "suite-auto-batch")
    results.append(
        Result("auto-batch", *judge_largest_batch(batch["runs"])) if batch else Result("auto-batch", "FAIL", "no report")
    )
    acc.add(*results)


def newest(out: Path, label: str) -> dict | None:
    found = sorted(out.glob(f"*_{label}*.json"))
    return read_json(found[-1]) if found else None


def acceptance(acc: Acceptance, full: bool, suite_timeout_s: float) -> None:
    """Every step, in order; each verdict is in acceptance.json as soon as it is reached."""
    import torch

    from gptbench.hardware.capability import compile_problem

    acc.save()
    acc.add(Result("compile-prerequisites", *judge_prerequisites(compile_problem(torch.device("cuda", 0)))))
    acc.add(nvml_result())
    doctor_step(acc)
    if not full:
        peak_step(acc)  # before the runs: their reports then carry MFU against the measured peak too
    default_step(acc)
    if full:
        pytest_step(acc)
        suite_step(acc, suite_timeout_s)
    else:
        auto_batch_step(acc)
    ddp_step(acc, torch.cuda.device_count())
    if not full:
        pytest_step(acc)
    why = f"late: {', '.join(acc.late)}" if acc.late else f"every step ran within --budget-s {acc.budget_s:.0f}"
    acc.results.append(Result("budget", "FAIL" if acc.late else "PASS", why, round(time.monotonic() - acc.start, 1)))
    acc.save(finished=True)


# --- inner steps (run by the steps above, in a child process on the GPU) -----------------------------------------


def dynamo_counts() -> dict:
    """Dynamo's own counters (torch/_dynamo/utils.py `counters`): graph breaks are counted per reason under
    counters["graph_break"] (exc.Unsupported.add_to_stats("graph_break"), symbolic_convert.py), and every graph
    Dynamo compiles adds one to counters["stats"]["unique_graphs"] (output_graph.py), so a recompile shows as a new
    graph; counters["frames"]["total"] counts frames Dynamo converted (convert_frame.py)."""
    from torch._dynamo.utils import counters

    return {
        "graph_breaks": sum(counters["graph_break"].values()),
        "graph_break_reasons": [str(k)[:200] for k in counters["graph_break"]],
        "unique_graphs": counters["stats"]["unique_graphs"],
        "frames": counters["frames"]["total"],
    }


def inner_default_step(out: Path) -> dict:
    """The default compiled run, measured as `gptbench run` measures it (its report goes to `out`), then the harness
    against CUDA events and a profile on the same compiled model: one compile serves every check."""
    import torch

    from gptbench.bench import runner
    from gptbench.bench.config import RunOptions, resolve_config
    from gptbench.bench.runner import finish_report
    from gptbench.bench.step import intra_op_threads
    from gptbench.hardware.capability import compile_problem, matmul_precision

    config = resolve_config(RunOptions(device="cuda"))
    kept, make = [], runner.Trainer
    runner.Trainer = lambda *a, **k: kept.append(make(*a, **k)) or kept[-1]  # keep the run's compiled model
    counts: dict = {}

    def on_progress(p: object) -> None:
        if p.phase == "measure" and p.step == 0:  # warm-up (the compile) is over
            counts["warmup"] = dynamo_counts()

    run = runner.run_benchmark(config, on_progress)
    counts["measured"] = dynamo_counts()
    report = finish_report(runner.new_report(config.torch_device, "acceptance-default", [run]), out)
    step = {"compile": config.compile, "compile_problem": compile_problem(config.torch_device), "counts": counts,
            "report": str(report), "status": run.result.status, "error": run.result.error}  # fmt: skip
    if run.result.status != "ok" or not kept:
        return step
    # The run's TF32 and thread settings again: Dynamo guards on them, and other values would recompile.
    with matmul_precision(config.tf32), intra_op_threads(config.threads):
        step.update(events_against_harness(kept[0], config.torch_device, config.tokens_per_step))
        counts["checks"] = dynamo_counts()
        with torch.profiler.profile(
            activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]
        ) as prof:
            for _ in range(2):
                kept[0].step()
            torch.cuda.synchronize(config.torch_device)
    step["profile_names"] = sorted({e.key for e in prof.key_averages()})
    return step


def events_against_harness(trainer: object, device: object, tokens_per_step: int, steps: int = 20) -> dict:
    """Harness rounds around a round timed by CUDA events alone (no per-step sync): the harness's sum should match."""
    import torch

    from gptbench.bench.harness import measure

    sync = lambda: torch.cuda.synchronize(device)  # noqa: E731
    harness_s = [sum(measure(trainer.step, sync, 0, steps, tokens_per_step).step_times_s) for _ in range(2)]
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record(torch.cuda.current_stream(device))
    for _ in range(steps):
        trainer.step()
    end.record(torch.cuda.current_stream(device))
    end.synchronize()
    harness_s.append(sum(measure(trainer.step, sync, 0, steps, tokens_per_step).step_times_s))
    return {"harness_s": harness_s, "events_s": start.elapsed_time(end) / 1000}


def inner_auto_batch(out: Path) -> dict:
    """--batch auto's own eager probe at AUTO_BATCH_SIZES, largest first, until one fits; then that batch compiled,
    in its own process (this process never touches the GPU)."""
    from gptbench.bench.config import RunOptions, resolve_config
    from gptbench.bench.runner import finish_report, new_report
    from gptbench.bench.worker import run_in_subprocess
    from gptbench.studies.autobatch import memory_bound_gb, probe

    config = resolve_config(RunOptions(device="cuda"))
    bound, source = memory_bound_gb(config.device, None, 0.1)
    found: dict = {"bound_gb": bound, "bound_source": source, "probes": []}
    for size in AUTO_BATCH_SIZES:
        found["probes"].append(asdict(probe(config, size, bound)))
        if found["probes"][-1]["fits"]:
            run = run_in_subprocess(replace(config, micro_batch=size))
            found["report"] = str(finish_report(new_report(config.torch_device, "acceptance-batch", [run]), out))
            return found
    found["why"] = "no probe fit: " + "; ".join(f"{p['micro_batch']}: {p['why']}" for p in found["probes"])
    return found


# --- main ----------------------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the reports, acceptance.json and acceptance.log")
    parser.add_argument("--full", action="store_true", help="the whole old suite: every test, `gptbench suite`")
    parser.add_argument(
        "--budget-s", type=float, help=f"deadline in seconds (default {DEFAULT_BUDGET_S}, --full {FULL_BUDGET_S})"
    )
    parser.add_argument("--suite-timeout-s", type=float, default=600, help="--full: stop the suite after this many seconds")
    parser.add_argument("--inner", choices=("default-step", "auto-batch"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    import torch

    if not torch.cuda.is_available():
        print(f"gpu_acceptance: no CUDA GPU here (torch {torch.__version__}, CUDA {torch.version.cuda}); run it on a GPU machine")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    if args.inner:
        inner = inner_default_step if args.inner == "default-step" else inner_auto_batch
        print(RESULT_PREFIX + json.dumps(inner(args.out)), flush=True)
        return 0
    exit_on_sigterm()
    (args.out / "acceptance.log").write_text("")
    budget = args.budget_s or (FULL_BUDGET_S if args.full else DEFAULT_BUDGET_S)
    acc = Acceptance(args.out, budget, "full" if args.full else "default", torch.cuda.get_device_name(0))
    acceptance(acc, args.full, args.suite_timeout_s)
    width = max(len(r.name) for r in acc.results)
    print(f"\ngptbench GPU acceptance · {acc.gpu} · {time.monotonic() - acc.start:,.0f} s in all")
    for r in acc.results:
        print(f"  {r.status:4}  {r.name:{width}}  {r.detail}" + (f"  ({r.seconds:,.0f} s)" if r.seconds else ""))
    print(f"files in {args.out}: {', '.join(sorted(p.name for p in args.out.iterdir()))}")
    return 0 if all(r.status != "FAIL" for r in acc.results) else 1


if __name__ == "__main__":
    sys.exit(main())
