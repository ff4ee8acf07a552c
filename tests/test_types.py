"""The one typing rule mypy's settings cannot say (pyproject's [tool.mypy] runs in .ci/run): `Any` appears in a function's
signature only where a value really is of any type. A JSON dictionary (`dict[str, Any]`) is; every other place is
listed below with its reason, so a new `Any` fails here and a place that no longer needs one must leave the list."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CLICK = "click's Context: typer's vendored click or click itself, whichever the installed typer uses"
ALLOWED = {
    ("gptbench/cli/common.py", "make_context"): CLICK,
    ("gptbench/cli/common.py", "invoke"): CLICK,
    ("gptbench/cli/common.py", "wrapper"): "friendly passes a command's arguments and result through untouched",
    ("gptbench/cli/options.py", "run_options"): "each option in its own type, as typer parsed it (RunOptions checks them)",
    ("gptbench/model/blocks.py", "_recomputed"): "a block's forward, of whatever signature the user's module gives it",
    ("gptbench/model/blocks.py", "run"): "a block's forward, of whatever signature the user's module gives it",
    ("gptbench/model/factory.py", "load_factory"): "the user's function: what it returns is checked when it is called",
    ("gptbench/model/loss.py", "forward"): "autograd's ctx object",
    ("gptbench/model/loss.py", "backward"): "autograd's ctx object",
    ("gptbench/predict/workload.py", "workload_of"): "Workload's other fields, each of its own type",
    ("gptbench/reports/schema.py", "_convert"): "a typing hint (X | None, list[X], a dataclass) and a JSON value",
}


def _signatures_with_any() -> set[tuple[str, str]]:
    found = set()
    for path in sorted((ROOT / "gptbench").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs, node.args.vararg, node.args.kwarg]
            hints = [a.annotation for a in args if a is not None and a.annotation is not None] + [node.returns]
            text = " ".join(ast.unparse(h) for h in hints if h is not None).replace("dict[str, Any]", "")
            if "Any" in text:
                found.add((path.relative_to(ROOT).as_posix(), node.name))
    return found


def test_any_in_a_signature_only_where_a_value_is_of_any_type() -> None:
    found = _signatures_with_any()
    new = sorted(found - ALLOWED.keys())
    assert not new, f"Any in these signatures: {new}; name the real type (a Protocol for an untyped library) or say why here"
    gone = sorted(ALLOWED.keys() - found)
    assert not gone, f"no Any left in {gone}: take them off ALLOWED"
