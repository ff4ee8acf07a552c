"""The sample outputs in the docs that the code computes (no measurement in them), rewritten from the code.

Two forms. A heading `### `gptbench ARGS`` followed, after any prose, by a ```text block: the block is what
`gptbench ARGS` prints. Or a marker line `<!-- sample width=N keep=ROW,ROW -->` right above a ```text block whose
commands are lines `$ gptbench ARGS`: each command is followed by what it prints, only the table rows and lines that
begin with one of the `keep` words when `keep` is given (the rows that answer the page's question), at N columns
(150 without `width`).

Each command runs in an empty temporary folder (no reports of "this machine") holding only reports/reference,
linked from the checkout, with the checkout's package on the path: what a new user sees.

    python scripts/doc_samples.py            # rewrite every sample in PAGES
    python scripts/doc_samples.py --check    # exit 1, naming each sample that differs (tests/test_docs.py runs it)
"""

from __future__ import annotations

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Torch-free commands only: each sample runs in well under a second.
PAGES = [ROOT / "README.md", ROOT / "docs" / "plan.md", ROOT / "docs" / "estimate.md", ROOT / "docs" / "sharding.md"]
# The heading, prose lines that open no block and no other heading, the block: no line is matched two ways.
SAMPLE = re.compile(r"(### `gptbench (?P<args>[^`\n]+)`\n(?:(?!###|```)[^\n]*\n)*```text\n)(?P<out>(?:(?!```)[^\n]*\n)*)(```\n)")
SESSION = re.compile(r"(<!-- sample(?P<opts>[^\n]*?) -->\n```text\n)(?P<out>(?:(?!```)[^\n]*\n)*)(```\n)")


def output_of(args: str, width: int = 150) -> str:
    """What `gptbench ARGS` prints, as a reader at `width` columns sees it, in a new user's empty folder.

    Never in the checkout: a user's `gptbench run` leaves its report in ./reports, and `plan` would take that machine
    for one of the options (the README's two commands, run in order, failed that way).
    """
    env = {**os.environ, "COLUMNS": str(width), "TERM": "dumb", "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "gptbench", *shlex.split(args)]
    with tempfile.TemporaryDirectory(prefix="gptbench-doc-sample-") as empty:
        (Path(empty) / "reports").mkdir()  # the checkout's reference reports only, for samples that name them
        (Path(empty) / "reports" / "reference").symlink_to(ROOT / "reports" / "reference")
        proc = subprocess.run(cmd, cwd=empty, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"doc_samples: `gptbench {args}` exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return "".join(line.rstrip() + "\n" for line in proc.stdout.splitlines())  # rich pads to the width


def _kept(lines: list[str], keep: list[str]) -> list[str]:
    """The lines that begin with a `keep` word (inside a table's first cell too), and the lines that continue them: a
    table row whose first cell is empty, or a plain line under a kept plain line (a wrapped warning)."""
    out, keeping, plain = [], False, False
    for line in lines:
        cells = line.split("│")
        if len(cells) > 2 and not cells[1].strip():  # a wrapped row: its first cell is empty
            out += [line] if keeping else []
            continue
        if plain and keeping and line[:1] not in "│┃┌└┏┗ " and not any(line.startswith(w) for w in keep + ["assumptions"]):
            out.append(line)  # a wrapped plain line
            continue
        keeping, plain = any(line.lstrip("│┃ ").startswith(word) for word in keep), not line.startswith(("│", "┃"))
        out += [line] if keeping else []
    return out


def session_of(block: str, opts: str) -> str:
    """A marker block rewritten: every `$ gptbench ARGS` line followed by what it prints, filtered by `keep`."""
    found = dict(re.findall(r"(\w+)=(\S+)", opts))
    width, keep = int(found.get("width", 150)), [w.replace("_", " ") for w in found.get("keep", "").split(",") if w]
    out = []
    for line in block.splitlines():
        if line.startswith("$ gptbench "):
            printed = output_of(line.removeprefix("$ gptbench "), width).splitlines()
            out += [line, *(_kept(printed, keep) if keep else printed)]
    return "".join(line + "\n" for line in out)


def refresh(text: str) -> tuple[str, list[str]]:
    """`text` with every sample rewritten, and the commands whose sample changed."""
    changed: list[str] = []

    def fresh(m: re.Match[str]) -> str:
        out = output_of(m["args"])
        if out != m["out"]:
            changed.append(m["args"])
        return m.group(1) + out + m.group(4)

    def fresh_session(m: re.Match[str]) -> str:
        out = session_of(m["out"], m["opts"])
        if out != m["out"]:
            changed.append("; ".join(line.removeprefix("$ gptbench ") for line in out.splitlines() if line.startswith("$ ")))
        return m.group(1) + out + m.group(4)

    text = SAMPLE.sub(fresh, text)
    return SESSION.sub(fresh_session, text), changed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a sample differs")
    args = parser.parse_args()
    stale = []
    for page in PAGES:
        text, changed = refresh(page.read_text())
        stale += [f"{page.relative_to(ROOT)}: gptbench {c}" for c in changed]
        if changed and not args.check:
            page.write_text(text)
    verb = "differ from what the code prints" if args.check else "rewritten"
    print("\n".join(stale) + "\n" + f"{len(stale)} sample(s) {verb}" if stale else "every sample is what the code prints")
    return 1 if stale and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
