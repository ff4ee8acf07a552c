"""The documentation stays true: every relative link resolves (file and #anchor), the README stays a front door,
and every figure the docs quote that the code computes is the figure the code computes now (issue 20: README
figures went stale when the projection was refitted). Measured figures are not checked here; they carry their
machine and date instead. Torch-free: the figures come from cloud/ and the estimate command's --json."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from gptbench.cli import app

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted([ROOT / "README.md", ROOT / "benchmarks" / "README.md", ROOT / "reports" / "reference" / "README.md",
               *(ROOT / "docs").glob("*.md")])  # fmt: skip
README_MAX_LINES = 250

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^```.*?^```", re.S | re.M)


def text_of(name: str) -> str:
    """A doc's text with typographic minus signs as ASCII, so a quoted "−16%" matches the code's "-16%"."""
    return (ROOT / name).read_text(encoding="utf-8").replace("\u2212", "-")


def flat(text: str) -> str:
    """Runs of white space as one space, so reflowing a paragraph never breaks a quoted figure."""
    return " ".join(text.split())


def assert_quoted(phrase: str, name: str) -> None:
    """`phrase` appears in the doc `name`, line breaks and repeated spaces aside."""
    assert flat(phrase) in flat(text_of(name)), f"{name} should say: {flat(phrase)}"


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped (hyphens and underscores kept), spaces to hyphens."""
    text = re.sub(r"[`*]", "", heading.strip()).lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every anchor a Markdown file offers: its headings' slugs, numbered as GitHub numbers repeats."""
    seen: dict[str, int] = {}
    found = set()
    for line in FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        match = re.match(r"#{1,6} (.+)", line)
        if match:
            base = slug(match.group(1))
            n = seen.get(base, 0)
            found.add(base if n == 0 else f"{base}-{n}")
            seen[base] = n + 1
    return found


def links(path: Path) -> list[str]:
    """The link targets of a Markdown file, outside code blocks."""
    return LINK.findall(FENCE.sub("", path.read_text(encoding="utf-8")))


def broken_links(path: Path) -> list[str]:
    """The relative links of `path` whose file is missing or whose #anchor is no heading of its target."""
    broken = []
    for target in links(path):
        if re.match(r"[a-z]+:", target):  # http:, https:, mailto: are not this repository's to keep
            continue
        file_part, _, anchor = target.partition("#")
        resolved = (path.parent / file_part).resolve() if file_part else path
        if not resolved.exists():
            broken.append(f"{target} (no such file)")
        elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
            broken.append(f"{target} (no heading #{anchor} in {resolved.name})")
        elif anchor and resolved.is_dir():
            broken.append(f"{target} (an anchor into a folder)")
    return broken


def test_the_slug_follows_githubs_rule() -> None:
    assert slug("`--batch auto`") == "--batch-auto"
    assert slug("CPU runs: allocator, threads, compile") == "cpu-runs-allocator-threads-compile"
    assert slug("The book's model") == "the-books-model"
    assert slug("CPU: does `torch.compile` pay for itself?") == "cpu-does-torchcompile-pay-for-itself"


def test_a_broken_link_is_found(tmp_path: Path) -> None:
    """The checker itself can fail: a missing file and a missing heading are both reported, code blocks are not read."""
    (tmp_path / "b.md").write_text("# Present heading\n", encoding="utf-8")
    page = tmp_path / "a.md"
    page.write_text("[ok](b.md#present-heading) [gone](c.md) [bad](b.md#absent) [web](https://x.org/#y)\n"
                    "```\n[in code](nowhere.md)\n```\n", encoding="utf-8")  # fmt: skip
    assert broken_links(page) == ["c.md (no such file)", "b.md#absent (no heading #absent in b.md)"]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path: Path) -> None:
    assert broken_links(path) == []


def test_every_docs_page_is_reachable_from_the_readme_or_the_docs_index() -> None:
    linked = {(ROOT / t.partition("#")[0]).resolve() for t in links(ROOT / "README.md")}
    linked |= {(ROOT / "docs" / t.partition("#")[0]).resolve() for t in links(ROOT / "docs" / "README.md")}
    assert [p.name for p in (ROOT / "docs").glob("*.md") if p.resolve() not in linked and p.name != "README.md"] == []


def test_the_readme_is_a_front_door() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_ci_runs_the_quick_start_lines_in_order() -> None:
    """.ci/run installs the CPU torch first, then runs the README's two Quick start lines verbatim: measure, then test."""
    readme, ci = text_of("README.md"), text_of(".ci/run")
    quick = subprocess.run(["awk", QUICK_START_AWK, str(ROOT / "README.md")], capture_output=True, text=True, check=True)
    lines = quick.stdout.splitlines()
    assert len(lines) == 2, lines
    assert "gptbench run" in lines[0] and lines[0].startswith("pip install torch==2.13.0 && pip install -e . &&")
    assert 'pip install torch==2.13.0 && pip install -e ".[test]" && python3 -m pytest' in lines[1]
    assert f"awk '{QUICK_START_AWK}' README.md" in ci, "CI must take the lines from the README, not a copy of them"
    assert ci.index("pip install -q torch==2.13.0") < ci.index(QUICK_START_AWK)
    assert "Quick start" in readme


QUICK_START_AWK = "/^## Quick start/{q=1} q&&/^```bash$/{b=1;next} b&&/^```$/{exit} b"  # .ci/run's: the first bash block


def estimate_json(*args: str, reports_dir: Path) -> dict:
    """`gptbench estimate --json` with no reports of this machine, so every figure is the projection's."""
    result = CliRunner().invoke(app, ["estimate", "--json", "--reports-dir", str(reports_dir), *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_readme_counts_the_reference_set_as_the_code_does() -> None:
    """"19 published + 2 gptbench reference runs", never "21 published": gptbench's own runs are not published."""
    from gptbench.predict.reference import fitted_on

    assert_quoted(fitted_on(), "README.md")
    assert_quoted(fitted_on(), "docs/methodology.md")
    for doc in ("README.md", "docs/methodology.md", "docs/estimate.md", "benchmarks/README.md"):
        assert "21 published" not in text_of(doc), doc


def test_book_model_projection_figures_are_the_codes(tmp_path: Path) -> None:
    """docs/your-model.md quotes `estimate --gpu a100-sxm4-40gb --batch 8 --seq 1024` for both models."""
    doc = "docs/your-model.md"
    gpt2, book = (estimate_json("--gpu", "a100-sxm4-40gb", "--batch", "8", "--seq", "1024", "--model", m,
                                reports_dir=tmp_path) for m in ("124m", "book-124m"))  # fmt: skip
    quoted = (
        f"`--model 124m` {gpt2['tokens_per_sec']:,.0f} tok/s and {gpt2['throughput']['memory_estimate_gb']:.1f} GB,\n"
        f"`--model book-124m` {book['tokens_per_sec']:,.0f} tok/s and {book['throughput']['memory_estimate_gb']:.1f} GB,"
        f" so one FineWeb-10B epoch takes {gpt2['hours']:.1f} h for GPT-2 and\n{book['hours']:.1f} h for the book's model"
    )
    assert_quoted(quoted, doc)


def test_estimate_arithmetic_example_is_the_codes(tmp_path: Path) -> None:
    e = estimate_json("--tokens", "10e9", "--tokens-per-sec", "142000", "--price", "1.29", reports_dir=tmp_path)
    phrase = f"10e9 tokens at 142,000 tok/s is {e['hours']:.2f} h; at $1.29/h that is ${e['cost_usd']:.2f}."
    assert_quoted(phrase, "docs/estimate.md")


def test_explain_shares_are_the_codes(tmp_path: Path) -> None:
    doc = "docs/estimate.md"
    default = estimate_json("--gpu", "a100", "--explain", reports_dir=tmp_path)["breakdown"]
    share = {g["group"]: g["share"] for g in default["groups"]}
    bound = {g["group"]: g["bound"] for g in default["groups"]}
    groups = (f"matmuls {share['matmuls']:.0%} ({bound['matmuls']}-bound), LM head + cross-entropy "
              f"{share['LM head + cross-entropy']:.0%}, elementwise {share['elementwise']:.0%} ({bound['elementwise']}-bound), "
              f"attention {share['attention']:.0%}, optimizer {share['optimizer']:.0%}")  # fmt: skip
    assert_quoted(groups, doc)
    naive = estimate_json("--gpu", "a100", "--explain", "--attention", "naive", "--no-compile", reports_dir=tmp_path)
    naive_attention = next(g for g in naive["breakdown"]["groups"] if g["group"] == "attention")
    ratio = naive["breakdown"]["step_time_s"] / default["step_time_s"]
    assert_quoted(f"the step is {ratio:.1f}× longer and attention takes {naive_attention['share']:.0%}, "
                  f"{naive_attention['bound']}-bound", doc)  # fmt: skip


def test_memory_figures_are_the_codes() -> None:
    """docs/methodology.md's memory section: the default step's estimate and the model against every reserved
    figure of the reference set, as the code computes them."""
    from gptbench.cloud.throughput import workload_for
    from gptbench.predict.reference import reference_points
    from gptbench.predict.workload import CONTEXT_GB, RESERVED_OVER_ALLOCATED, memory_estimate_gb

    doc = "docs/methodology.md"
    default_gb = memory_estimate_gb(workload_for("124m", None, 16, "bf16", True, "sdpa"))
    assert_quoted(f"GPT-2 124M at batch 16 × 1024 in bf16 now comes to about {default_gb:.1f} GB", doc)
    assert_quoted(f"multiplied by their mean, {RESERVED_OVER_ALLOCATED:.2f}", doc)
    assert_quoted(f"now `CONTEXT_GB` = {CONTEXT_GB:g}", doc)
    errors = {p.name: memory_estimate_gb(p.workload) - CONTEXT_GB for p in reference_points() if p.reserved_gb}
    reserved = {p.name: p.reserved_gb or 0.0 for p in reference_points() if p.reserved_gb}
    e = {name: f"{errors[name] / reserved[name] - 1:+.1%}" for name in errors}
    h200 = [name for name in e if name.startswith("2026")]
    assert_quoted(f"the H200 runs {e[h200[0]]} (batch 16) and {e[h200[1]]} (batch 64)", doc)
    book = [e[n] for n in ("raschka-a100-flash-eager", "raschka-a100-compile", "raschka-a100-vocab64")]
    assert_quoted(f"{', '.join(book)} at batch 8 and {e['raschka-a100-batch32']} at batch 32", doc)


@pytest.fixture(scope="module")
def held_out() -> list:
    from gptbench.predict.calibration import published_points
    from gptbench.predict.validation import leave_one_source_out

    return leave_one_source_out(published_points())


@pytest.fixture(scope="module")
def points_out() -> list:
    from gptbench.predict.calibration import published_points
    from gptbench.predict.validation import leave_one_out

    return leave_one_out(published_points())


def test_leave_one_out_table_is_the_codes(held_out: list, points_out: list) -> None:
    """Each row of docs/methodology.md's table: projected/measured - 1 with only the point held out, then measured,
    projected with the point's whole source held out, and projected/measured - 1, as
    benchmarks/projection_vs_measured.py prints them; then the summaries under it in the symmetric error
    |ln(projected/measured)|, the bound chosen in advance and how many points meet it, the band, the named
    exceptions, the bands widened to them and the extrapolations' wider band."""
    import math

    from gptbench.hardware.specs import find_gpu
    from gptbench.predict.validation import (
        EXCEPTIONS,
        EXTRAPOLATION_WIDTH,
        HELD_OUT_BOUND,
        band_factors,
        evidence_for,
    )

    doc = "docs/methodology.md"
    rows = [line for line in text_of(doc).splitlines() if line.startswith("| ") and line.rstrip().endswith("% |")]
    cells = [[c.strip() for c in row.strip("|").split("|")][-4:] for row in rows]
    assert [p.name for p in points_out] == [h.name for h in held_out]
    expected = [[f"{math.exp(p.error) - 1:+.0%}", f"{h.measured_per_gpu:,.0f}", f"{h.projected_per_gpu:,.0f}",
                 f"{math.exp(h.error) - 1:+.0%}"] for p, h in zip(points_out, held_out, strict=True)]  # fmt: skip
    assert cells == expected
    sizes = [abs(h.error) for h in held_out]
    assert_quoted(f"Median |ln error| {statistics.median(sizes):.2f}, worst {max(sizes):.2f}.", doc)
    point_sizes = [abs(p.error) for p in points_out]
    assert_quoted(f"Leaving one point out: median |ln error| {statistics.median(point_sizes):.2f},"
                  f" worst {max(point_sizes):.2f}.", doc)  # fmt: skip
    within = sum(s <= HELD_OUT_BOUND for s in sizes)
    points_within = sum(s <= HELD_OUT_BOUND for s in point_sizes)
    assert_quoted(f"{within} of the {len(sizes)} points meet it leaving one source out ({points_within} of "
                  f"{len(point_sizes)} leaving one point out)", doc)  # fmt: skip
    slow, fast = band_factors(HELD_OUT_BOUND)
    assert_quoted(f"tok/s × {slow:.2f} to × {fast:.2f}", doc)
    for name in EXCEPTIONS:
        assert_quoted(name, doc)
    widened = {"h100-nvl": "the H100 NVL", "rtx5090": "the RTX 5090", "a100-sxm4-40gb": "the A100 40GB (Raschka's points)"}
    for gpu, words in widened.items():
        low, high = evidence_for(find_gpu(gpu)).band
        assert_quoted(f"{words} × {low:.2f} to × {high:.2f}", doc)
    low, high = band_factors(EXTRAPOLATION_WIDTH)
    assert_quoted(f"tok/s × {low:.2f} to × {high:.2f} (`EXTRAPOLATION_WIDTH`)", doc)


def test_estimate_page_describes_the_bands_estimate_uses() -> None:
    """docs/estimate.md: the carried and projected bands, as holdout.py computes them (the samples under them are
    rewritten and checked by scripts/doc_samples.py)."""
    import math

    from gptbench.predict.holdout import gpu_width, transfer_width

    doc = "docs/estimate.md"
    same, cross, gpu = transfer_width(False), transfer_width(True), gpu_width()
    assert_quoted(f"tokens/s × {math.exp(-same):.2f} to × {math.exp(same):.2f} (× {math.exp(-cross):.2f} to"
                  f" × {math.exp(cross):.2f} across the vocabulary's alignment)", doc)  # fmt: skip
    assert_quoted(f"the worst GPU held out with its sources, × {math.exp(-gpu):.2f} to × {math.exp(gpu):.2f}", doc)


def test_fitted_efficiencies_and_what_they_imply_are_the_codes() -> None:
    """The efficiencies, the A100-only fits, the modelled compile and vocabulary gains, and the MFUs of the misses."""
    from gptbench.bench.flops import flops_per_token
    from gptbench.hardware.specs import find_gpu
    from gptbench.model.config import GPTConfig
    from gptbench.predict.calibration import SINGLE_STEP_WEIGHT, fit, projected_per_gpu, published_points
    from gptbench.predict.projection import EFFICIENCIES

    doc = "docs/methodology.md"
    assert_quoted(f"**memory efficiency {EFFICIENCIES.memory:.2f}**", doc)
    single = [p for p in published_points() if p.weight == SINGLE_STEP_WEIGHT]
    assert_quoted(f"The {len(single)} RunPod rows are single timed steps, not medians, and weigh {SINGLE_STEP_WEIGHT} each", doc)
    assert_quoted(f"**matmul efficiency {EFFICIENCIES.matmul:.2f}** and **{EFFICIENCIES.unaligned:.2f}**", doc)
    points = {p.name: p for p in published_points()}
    first = fit([p for name, p in points.items() if name.startswith("raschka") or name == "llmc-8xa100"])
    a100 = [p for p in points.values() if p.gpu.startswith("a100")]
    every_a100 = fit(a100)
    assert_quoted(f"the fit is {first.matmul:.2f} and {first.unaligned:.2f}", doc)
    assert_quoted(f"on all {len(a100)} A100 points, {every_a100.matmul:.2f} and {every_a100.unaligned:.2f}", doc)

    def modelled_gain(after: str, before: str) -> float:
        return projected_per_gpu(points[after], EFFICIENCIES) / projected_per_gpu(points[before], EFFICIENCIES) - 1

    def measured_gain(after: str, before: str) -> float:
        return points[after].tokens_per_sec_per_gpu / points[before].tokens_per_sec_per_gpu - 1

    compile_, vocab = ("raschka-a100-compile", "raschka-a100-flash-eager"), ("raschka-a100-vocab64", "raschka-a100-compile")
    assert_quoted(
        f"`torch.compile` {modelled_gain(*compile_):+.0%} where Raschka measured {measured_gain(*compile_):+.0%},\n"
        f"and the padded vocabulary {modelled_gain(*vocab):+.0%} where he measured {measured_gain(*vocab):+.0%}",
        doc,
    )

    per_token = flops_per_token(GPTConfig.from_name("124m").padded(), 1024)
    mfu = {name: points[name].tokens_per_sec_per_gpu * per_token / (find_gpu(points[name].gpu).bf16_tflops * 1e12)
           for name in ("runpod-h100-nvl-b128", "runpod-rtx5090-b32", "runpod-h100-sxm-b64")}  # fmt: skip
    assert_quoted(
        f"the H100 NVL reached {mfu['runpod-h100-nvl-b128']:.0%} of its datasheet bf16 peak, the RTX 5090 "
        f"{mfu['runpod-rtx5090-b32']:.0%}, the H100 SXM\n{mfu['runpod-h100-sxm-b64']:.0%}",
        doc,
    )


def test_model_counts_quoted_for_the_book_and_the_example_are_the_codes() -> None:
    """docs/your-model.md: the book's parameters and FLOP-counting N (torch-free), and the SwiGLU example's parameters
    and its counted FLOPs, which are 6 x matmul weights + 12LTC exactly (tests/test_factory.py checks the counter
    against that identity; here the identity is evaluated on the example built on the meta device, without memory)."""
    import importlib.util

    import torch

    from gptbench.bench.flops import flops_per_token, matmul_params
    from gptbench.model.config import GPTConfig, count_params

    doc = "docs/your-model.md"
    book = GPTConfig.from_name("book-124m")
    assert_quoted(f"**{count_params(book):,}**, the figure the book gives", doc)
    assert_quoted(f"1,024·768 = {matmul_params(book):,}", doc)
    assert_quoted(
        f"a {book.vocab_size} × {book.n_embd} matrix of its own ({book.vocab_size * book.n_embd / 1e6:.1f}M parameters)", doc
    )

    spec = importlib.util.spec_from_file_location("swiglu_gpt", ROOT / "examples" / "swiglu_gpt.py")
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    with torch.device("meta"):
        model = example.make_model()
    params = sum(p.numel() for p in model.parameters())
    matmul_weights = sum(p.numel() for name, p in model.named_parameters() if p.dim() == 2 and not name.startswith("wpe"))
    counted = 6 * matmul_weights + 12 * 12 * 1024 * 768
    assert_quoted(f"{counted:,} per token at T = 1024, {params:,} parameters", doc)
    gpt2 = GPTConfig.from_name("124m").padded()
    gpt2_counted = 6 * (gpt2.n_layer * 12 * gpt2.n_embd**2 + gpt2.vocab_size * gpt2.n_embd) + 12 * 12 * 1024 * 768
    assert_quoted(f"it counts {gpt2_counted:,} FLOPs per token against the formula's {flops_per_token(gpt2, 1024):,}", doc)


def test_samples_are_what_the_code_prints() -> None:
    """The sample outputs of torch-free commands in the README, docs/plan.md, docs/estimate.md and docs/sharding.md are
    computed by the code; scripts/doc_samples.py --check reruns each one in an empty folder."""
    script = ROOT / "scripts" / "doc_samples.py"
    proc = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_plan_scaling_table_is_the_codes() -> None:
    """docs/plan.md's table of the scaling model's held-out points quotes what predict/scaling.py recomputes."""
    import math

    from gptbench.predict.scaling import leave_one_out_errors

    quoted = re.findall(r"\| ×(\d\.\d\d) \|\n", text_of("docs/plan.md"))
    assert quoted == [f"{math.exp(error):.2f}" for _, error in leave_one_out_errors()]
