"""The GPU acceptance check: what a developer with an NVIDIA GPU runs first, as one prepared call.

    python benchmarks/gpu_acceptance.py --out DIR

Runs and judges, each step in its own process so that one failure cannot hide the others:
  doctor          `gptbench doctor --json` exits 0 with no failed check
  nvml-uuid       NVML's device for cuda:0 is CUDA's (UUID "GPU-" + props.uuid)
  graph           the compiled default step under TORCH_LOGS=recompiles,graph_breaks: no graph break, no recompile
                  after warm-up
  harness         the harness's 20 timed steps against CUDA events around 20 steps of the same trainer: within 3%
  attention       the kernel the profiler shows for SDPA: flash or cuDNN, not the math fallback
  pytest-gpu      `pytest -m gpu`
  suite           `gptbench suite --out DIR`, timed (target: under 8 minutes)
  peak-bf16       the suite's `peak`: best bf16 matmul ≥ 0.6 × the datasheet's dense bf16 peak
  peak-bandwidth  the suite's `peak`: copy bandwidth ≥ 0.7 × the datasheet's memory bandwidth
  auto-batch      the suite's `--batch auto`: its largest candidate ran, compiled
  ddp-scaling     with 2+ GPUs, `run --nproc 2 --scaling` gives a scaling efficiency (skipped with one GPU)

It prints a PASS/FAIL table, writes acceptance.json (every result, the doctor's checks) and acceptance.log (every
step's output) and the reports into DIR, and exits 0 only when nothing failed. Without CUDA: one line, exit 2.
The files stay few (at most 8) so that a remote run can send them all back.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKER = "=== gptbench acceptance: measured steps begin ==="
HARNESS_TOLERANCE = 0.03
PEAK_BF16_SHARE, PEAK_BANDWIDTH_SHARE = 0.6, 0.7
SUITE_TARGET_S = 480


@dataclass
class Result:
    name: str
    status: str  # PASS | FAIL | SKIP
    detail: str
    seconds: float = 0.0


# --- judging (pure: tests/test_acceptance.py feeds them recorded outputs) -------------------------------------


def judge_graph_log(text: str) -> tuple[str, str]:
    """No graph break anywhere, no recompilation after MARKER (TORCH_LOGS=graph_breaks,recompiles lines)."""
    if MARKER not in text:
        return "FAIL", "the measured steps never began (see acceptance.log)"
    before, after = text.split(MARKER, 1)
    breaks = [line for line in text.splitlines() if "graph break" in line.lower()]
    recompiles = [line for line in after.splitlines() if "recompil" in line.lower()]
    if breaks or recompiles:
        first = (breaks or recompiles)[0].strip()[:160]
        return "FAIL", f"{len(breaks)} graph break line(s), {len(recompiles)} recompile line(s) after warm-up; first: {first}"
    warmup = sum("recompil" in line.lower() for line in before.splitlines())
    return "PASS", f"no graph break; no recompile after warm-up ({warmup} recompile line(s) during warm-up)"


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


def judge_auto_batch(report: dict) -> tuple[str, str]:
    """The largest candidate of `--batch auto` ran to the end, compiled."""
    runs = report.get("runs") or []
    if not runs:
        return "FAIL", "the auto-batch report has no runs"
    largest = max(runs, key=lambda r: r["config"]["micro_batch"])
    c, r = largest["config"], largest["result"]
    detail = f"micro-batch {c['micro_batch']}: {r['status']}, {'compiled' if c['compile'] else 'eager'}"
    if r.get("tokens_per_sec"):
        detail += f", {r['tokens_per_sec']:,.0f} tok/s"
    return ("PASS" if r["status"] == "ok" and c["compile"] else "FAIL"), detail + (f" ({r['error']})" if r.get("error") else "")


# --- running -------------------------------------------------------------------------------------------------


class Log:
    """Every step's output into one file, under a header each."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.write_text("")

    def add(self, title: str, text: str) -> None:
        with self.path.open("a") as f:
            f.write(f"\n===== {title} =====\n{text}\n")


def run(cmd: list[str], log: Log, title: str, timeout_s: float, env: dict | None = None) -> tuple[int, str, float]:
    """Run `cmd` from the checkout; (exit code, stdout + stderr, seconds); a timeout is exit code 124."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout_s, env={**os.environ, **(env or {})})
        code, text = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as e:  # its output arrives as bytes even with text=True
        parts = [p.decode(errors="replace") if isinstance(p, bytes) else (p or "") for p in (e.stdout, e.stderr)]
        code, text = 124, "".join(parts) + f"\n(stopped after {timeout_s:.0f} s)"
    log.add(f"{title}: {' '.join(cmd)} → exit {code}", text)
    return code, text, time.perf_counter() - start


def inner_default_step(out: Path) -> None:
    """In a child with TORCH_LOGS set: the compiled default step, its harness against CUDA events, its profile."""
    import torch

    from gptbench.bench.config import RunOptions, resolve_config
    from gptbench.bench.harness import measure
    from gptbench.bench.step import Trainer
    from gptbench.data.sources import make_source

    config = resolve_config(RunOptions(device="cuda"))
    device = config.torch_device
    trainer = Trainer(config, make_source(config.data, config.micro_batch, config.seq_len, device, config.seed))
    sync = lambda: torch.cuda.synchronize(device)  # noqa: E731
    for _ in range(config.warmup_steps):
        trainer.step()
    sync()
    print(MARKER, file=sys.stderr, flush=True)
    steps, harness_s = 20, []
    for _ in range(2):
        harness_s.append(sum(measure(trainer.step, sync, 0, steps, config.tokens_per_step).step_times_s))
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record(torch.cuda.current_stream(device))
    for _ in range(steps):
        trainer.step()
    end.record(torch.cuda.current_stream(device))
    end.synchronize()
    harness_s.append(sum(measure(trainer.step, sync, 0, steps, config.tokens_per_step).step_times_s))
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU, torch.profiler.ProfilerActivity.CUDA]) as prof:
        for _ in range(2):
            trainer.step()
        sync()
    names = sorted({e.key for e in prof.key_averages()})
    result = {"config": str(config), "harness_s": harness_s, "events_s": start.elapsed_time(end) / 1000, "profile_names": names}
    (out / "default_step.json").write_text(json.dumps(result))


def datasheet(name: str) -> tuple[float | None, float | None]:
    from gptbench.hardware.specs import match_device

    spec = match_device(name)
    return (spec.bf16_tflops, spec.memory_bw_gbs) if spec else (None, None)


def newest(out: Path, label: str) -> dict | None:
    found = sorted(out.glob(f"*_{label}.json"))
    return json.loads(found[-1].read_text()) if found else None


def acceptance(out: Path, suite_timeout_s: float) -> list[Result]:
    """Every step, in order; returns the results (also written to acceptance.json)."""
    import torch

    py, log, results = sys.executable, Log(out / "acceptance.log"), []
    code, text, took = run([py, "-m", "gptbench", "doctor", "--json"], log, "doctor", 300)
    doctor = _json_or_none(text)
    failed = [f"{c['area']} {c['name']}" for c in (doctor or {}).get("checks", []) if c["status"] == "fail"]
    results.append(
        Result("doctor", "PASS" if code == 0 and doctor and not failed else "FAIL", "; ".join(failed) or f"exit {code}", took)
    )
    props = torch.cuda.get_device_properties(0)
    uuid = f"GPU-{props.uuid}"
    nvml = [c for c in (doctor or {}).get("checks", []) if c["area"] == "cuda:0" and c["name"] == "NVML device"]
    match = bool(nvml) and uuid in nvml[0]["value"]
    results.append(Result("nvml-uuid", "PASS" if match else "FAIL", f"CUDA {uuid}; NVML {nvml[0]['value'] if nvml else 'none'}"))

    env = {"TORCH_LOGS": "recompiles,graph_breaks", "PYTHONUNBUFFERED": "1"}
    code, text, took = run([py, __file__, "--inner-default-step", "--out", str(out)], log, "default step", 600, env)
    results.append(Result("graph", *judge_graph_log(text), took))
    step = _json_or_none((out / "default_step.json").read_text()) if (out / "default_step.json").exists() else None
    if step:
        results.append(Result("harness", *judge_harness(step["harness_s"], step["events_s"])))
        results.append(Result("attention", *judge_attention(step["profile_names"])))
        (out / "default_step.json").unlink()  # folded into acceptance.json below: the file count stays small
    else:
        results += [Result(n, "FAIL", f"the default step did not finish (exit {code})") for n in ("harness", "attention")]

    code, text, took = run([py, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider"], log, "pytest -m gpu", 600)
    results.append(
        Result(
            "pytest-gpu", "PASS" if code == 0 else "FAIL", text.strip().splitlines()[-1] if text.strip() else f"exit {code}", took
        )
    )

    code, text, took = run([py, "-m", "gptbench", "suite", "--device", "cuda", "--out", str(out)], log, "suite", suite_timeout_s)
    status = "PASS" if code == 0 and took <= SUITE_TARGET_S else "FAIL"
    results.append(Result("suite", status, f"exit {code} after {took:,.0f} s (target {SUITE_TARGET_S} s)", took))
    peak = newest(out, "suite-peak")
    results += (
        judge_peak(peak["peak"], *datasheet(props.name))
        if peak and peak.get("peak")
        else [Result("peak-bf16", "FAIL", "no peak report")]
    )
    batch = newest(out, "suite-auto-batch")
    results.append(
        Result("auto-batch", *judge_auto_batch(batch)) if batch else Result("auto-batch", "FAIL", "no auto-batch report")
    )

    if torch.cuda.device_count() >= 2:
        cmd = [py, "-m", "gptbench", "run", "--nproc", "2", "--scaling", "--steps", "10", "--label", "ddp", "--out", str(out)]
        code, text, took = run(cmd, log, "ddp", 600)
        ddp = newest(out, "ddp")
        eff = [r["result"].get("scaling_efficiency") for r in (ddp or {}).get("runs", [])]
        eff = [e for e in eff if e is not None]
        results.append(
            Result(
                "ddp-scaling",
                "PASS" if code == 0 and eff else "FAIL",
                f"efficiency {eff[0]:.1%}" if eff else f"exit {code}",
                took,
            )
        )
    else:
        results.append(Result("ddp-scaling", "SKIP", f"{torch.cuda.device_count()} GPU: DDP needs two or more"))
    (out / "acceptance.json").write_text(
        json.dumps({"gpu": props.name, "results": [asdict(r) for r in results], "doctor": doctor, "default_step": step}, indent=1)
    )
    return results


def _json_or_none(text: str) -> dict | None:
    try:
        start = text.index("{")
        return json.loads(text[start : text.rindex("}") + 1])
    except ValueError:
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="folder for the reports, acceptance.json and acceptance.log")
    parser.add_argument("--suite-timeout-s", type=float, default=600, help="stop the suite after this many seconds")
    parser.add_argument("--inner-default-step", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    import torch

    if not torch.cuda.is_available():
        print(f"gpu_acceptance: no CUDA GPU here (torch {torch.__version__}, CUDA {torch.version.cuda}); run it on a GPU machine")
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    if args.inner_default_step:
        inner_default_step(args.out)
        return 0
    start = time.perf_counter()
    results = acceptance(args.out, args.suite_timeout_s)
    width = max(len(r.name) for r in results)
    print(f"\ngptbench GPU acceptance · {torch.cuda.get_device_name(0)} · {time.perf_counter() - start:,.0f} s in all")
    for r in results:
        print(f"  {r.status:4}  {r.name:{width}}  {r.detail}" + (f"  ({r.seconds:,.0f} s)" if r.seconds else ""))
    print(f"files in {args.out}: {', '.join(sorted(p.name for p in args.out.iterdir()))}")
    return 0 if all(r.status != "FAIL" for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
