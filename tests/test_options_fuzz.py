"""Every command's options fuzzed (hypothesis, a fixed seed): random strings, numbers at the edges and odd
combinations never end in a traceback, and input that is refused is one red line with exit code 2, refused before
the command reaches its work. The work itself (the one library call of each measuring command) is replaced by a fake
that records it was reached; estimate, plan and compare run for real. The options are read from the commands
themselves, so a new option is fuzzed as soon as it exists."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer.main
import typer.testing
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from gptbench.cli import app

GROUP = typer.main.get_command(app)
COMMANDS = GROUP.commands  # type: ignore[attr-defined]
# One small report for compare (a folder of them costs seconds per example under load).
REFERENCE = Path(__file__).parents[1] / "reports" / "reference" / "20261128-232816_vm_amd-epyc.json"

# Each command's work, faked: the one library call it makes once its options are checked.
WORK = {
    "run": ["gptbench.cli.run.measure_with_progress", "gptbench.cli.run.search_batch", "gptbench.bench.distributed.launch"],
    "sweep": ["gptbench.studies.series.run_series"],
    "ablate": ["gptbench.studies.autobatch.find_largest", "gptbench.studies.series.run_series"],
    "suite": ["gptbench.cli.peak.peak_in_child"],
    "peak": ["gptbench.hardware.peak.measure_peak"],
    "doctor": ["gptbench.doctor.system.diagnose"],
    "chapter5": ["gptbench.studies.chapter5.run_chapter5"],
    "prepare": ["gptbench.data.prepare.prepare"],
}
FAKED = tuple(WORK)
REAL = ("estimate", "plan", "compare")
# What each command is given before the fuzzed options (later options win): a tiny model on the CPU, a throughput
# for estimate, inputs for compare and prepare.
BASE = {
    "run": ["--device", "cpu", "--model", "tiny"],
    "sweep": ["--device", "cpu", "--model", "tiny"],
    "ablate": ["--device", "cpu", "--model", "tiny"],
    "suite": ["--device", "cpu", "--model", "tiny"],
    "peak": ["--device", "cpu"],
    "doctor": [],
    "chapter5": ["--device", "cpu", "--model", "book-tiny"],
    "prepare": ["corpus.txt"],
    "estimate": ["--tokens-per-sec", "1000"],
    "plan": [],
    "compare": [str(REFERENCE)],
}
SETTINGS = settings(
    derandomize=True, max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def invoke(args: list[str]) -> Any:
    return CliRunner().invoke(app, args)


class Reached(Exception):
    """The command got past every check to its work."""


def _reach(*args: Any, **kwargs: Any) -> None:
    raise Reached


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import importlib

    for targets in WORK.values():
        for target in targets:
            module, name = target.rsplit(".", 1)
            monkeypatch.setattr(importlib.import_module(module), name, _reach)
    # typer's runner rebuilds the click command from the app on every call (40 ms, most of a refused command's time):
    # built once here (typer 0.2x's testing module; where it has no such hook the runner just stays slower)
    monkeypatch.setattr(typer.testing, "_get_command", lambda _app: GROUP, raising=False)
    monkeypatch.chdir(tmp_path)  # files a command writes (plan --html, compare --csv) land here; no ./reports is read
    (tmp_path / "corpus.txt").write_text("the verdict " * 50)


# Values as a user might type them: the edges of numbers, sizes, unicode and nothing at all; no '/' or '\\' so a
# path never leaves the test's folder, no NUL or lone surrogate (no command line can hold them).
EDGES = ["", " ", "0", "-0", "1", "-1", "0.5", "1.5", "nan", "NaN", "inf", "-inf", "1e309", "1e-309", "auto",
         "none", "all", "cpu", "2GB", "1TB", "abc", "é", "中文", "🙂", "1_000", "0x10", str(2**63), str(10**30),
         "-" + str(10**30)]  # fmt: skip
TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00/\\"), max_size=12)
VALUES = st.one_of(
    st.sampled_from(EDGES), TEXT, st.integers(-(2**70), 2**70).map(str), st.floats(allow_nan=True).map(repr)
)


def _options(command: str) -> list[Any]:
    """The command's options (not its arguments, not --help)."""
    return [p for p in COMMANDS[command].params if p.param_type_name == "option" and p.name != "help"]


@st.composite
def command_lines(draw: Callable[..., Any], command: str) -> list[str]:
    """The command, its base, and a few of its options with fuzzed values (flags given or not)."""
    chosen = draw(st.lists(st.sampled_from(_options(command)), max_size=4, unique_by=lambda p: p.name))
    args = [command, *BASE[command]]
    for param in chosen:
        if param.is_flag:
            args.append(draw(st.sampled_from([*param.opts, *param.secondary_opts])))
        else:
            args += [param.opts[0], draw(VALUES)]
    return args


def _check(result: Any, args: list[str], faked: bool) -> bool:
    """Never a traceback; refused input is one red line, exit code 2 (warnings may come before it). Returns whether
    the command reached its work."""
    if isinstance(result.exception, Reached):
        assert faked
        return True
    assert result.exception is None or isinstance(result.exception, SystemExit), (args, repr(result.exception))
    assert "Traceback" not in result.output, args
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    if result.exit_code == 2:
        errors = [line for line in lines if line.startswith("error:")]
        others = [line for line in lines if not line.startswith(("error:", "warning:"))]
        assert len(errors) == 1 and not others, (args, result.stderr)
    else:
        assert not faked and result.exit_code == 0, (args, result.exit_code, result.output)
    return False


@pytest.mark.parametrize("command", [*FAKED, *REAL])
@SETTINGS
@given(data=st.data())
def test_fuzzed_options_never_end_in_a_traceback(fakes: None, command: str, data: st.DataObject) -> None:
    args = data.draw(command_lines(command))
    _check(invoke(args), args, command in FAKED)


def _kind(param: Any) -> str:
    """int, float, str, ...: what the option parses its value into (typer >= 0.2x keeps it in a type descriptor, click
    in `type`)."""
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is not None:
        return getattr(descriptor.annotation, "__name__", str(descriptor.annotation))
    return {"integer": "int"}.get(param.type.name, param.type.name)


def _bad_numbers(param: Any) -> list[str]:
    """Values no number option accepts: nan, infinities and words for a float; anything but a whole number in range for
    an integer (10^30 is beyond every bound, seeds included)."""
    if _kind(param) == "float":
        return ["nan", "inf", "-inf", "abc"]
    return ["1.5", "", str(10**30), "-" + str(10**30)]


NUMBER_OPTIONS = [
    (command, param)
    for command in (*FAKED, *REAL)
    for param in _options(command)
    if not param.is_flag and _kind(param) in ("int", "float")
]


@pytest.mark.parametrize(("command", "param"), NUMBER_OPTIONS, ids=[f"{c} {p.opts[0]}" for c, p in NUMBER_OPTIONS])
def test_a_bad_number_is_refused_before_any_work(fakes: None, command: str, param: Any) -> None:
    for value in _bad_numbers(param):
        args = [command, *BASE[command], param.opts[0], value]
        result = invoke(args)
        assert not _check(result, args, command in FAKED) and result.exit_code == 2, (args, result.output)


def test_every_number_option_is_checked_as_it_is_parsed() -> None:
    """A number option without a check would let nan, inf or 10^30 through: each one names a check (gptbench/cli/checks.py)."""
    assert [f"{c} {p.opts[0]}" for c, p in NUMBER_OPTIONS if p.callback is None] == []
