"""The sample outputs in the docs that the code computes (no measurement in them), rewritten from the code.

A sample is a heading `### `gptbench ARGS`` followed, after any prose, by a ```text block: the block is what
`gptbench ARGS` prints today, run from the checkout at 150 columns.

    python scripts/doc_samples.py            # rewrite every sample in docs/plan.md
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
PAGES = [ROOT / "docs" / "plan.md"]  # torch-free commands only: each sample runs in well under a second
# The heading, prose lines that open no block and no other heading, the block: no line is matched two ways.
SAMPLE = re.compile(r"(### `gptbench (?P<args>[^`\n]+)`\n(?:(?!###|```)[^\n]*\n)*```text\n)(?P<out>(?:(?!```)[^\n]*\n)*)(```\n)")


def output_of(args: str) -> str:
    """What `gptbench ARGS` prints, as a reader at 150 columns sees it, in a new user's empty folder.

    Never in the checkout: a user's `gptbench run` leaves its report in ./reports, and `plan` would take that machine
    for one of the options (the README's two commands, run in order, failed that way).
    """
    env = {**os.environ, "COLUMNS": "150", "TERM": "dumb", "NO_COLOR": "1", "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "gptbench", *shlex.split(args)]
    with tempfile.TemporaryDirectory(prefix="gptbench-doc-sample-") as empty:
        (Path(empty) / "reports").mkdir()  # the checkout's reference reports only, for samples that name them
        (Path(empty) / "reports" / "reference").symlink_to(ROOT / "reports" / "reference")
        proc = subprocess.run(cmd, cwd=empty, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"doc_samples: `gptbench {args}` exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return "".join(line.rstrip() + "\n" for line in proc.stdout.splitlines())  # rich pads to the width


def refresh(text: str) -> tuple[str, list[str]]:
    """`text` with every sample rewritten, and the commands whose sample changed."""
    changed: list[str] = []

    def fresh(m: re.Match[str]) -> str:
        out = output_of(m["args"])
        if out != m["out"]:
            changed.append(m["args"])
        return m.group(1) + out + m.group(4)

    return SAMPLE.sub(fresh, text), changed


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
