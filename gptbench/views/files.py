"""Files the views write: the --html page's shared style, matplotlib or a hint to install it, and writing an export
atomically, never over an existing file unless asked. pandas-free, so `plan` can use it."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import ModuleType

from gptbench.atomic import claim_name, make_folder, replace_with, write_temp_text
from gptbench.errors import GptbenchError

HTML_HINT = "pip install matplotlib (the html extra)"


def matplotlib_or_hint() -> ModuleType:
    """matplotlib, or a one-line error saying how to install it (it is the optional `html` extra)."""
    try:
        import matplotlib
    except ImportError as e:
        raise GptbenchError(f"--html needs matplotlib, which is not installed: {HTML_HINT}") from e
    return matplotlib


STYLE = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 1400px; color: #222; padding: 0 1em; }
h1 { font-size: 1.4em; } .meta, .notes { color: #555; } .warn { background: #fff4d6; border-left: 4px solid #e0a800;
padding: .5em 1em; } table { border-collapse: collapse; margin: 1em 0; } th, td { border-bottom: 1px solid #ddd;
padding: .3em .6em; text-align: left; white-space: nowrap; font-size: 13px; } .num { text-align: right; }
tr.failed { color: #b00; } tr.start td { border-top: 2px solid #888; } .scroll { overflow-x: auto; }
figure { margin: 1em 0; } svg { max-width: 100%; height: auto; }
"""


def check_targets(targets: Mapping[str, Path | None], force: bool) -> dict[str, Path]:
    """The export paths that were asked for, checked before anything is computed or written."""
    chosen = {option: path for option, path in targets.items() if path is not None}
    if "--html" in chosen:
        matplotlib_or_hint()
    seen: dict[Path, str] = {}
    for option, path in chosen.items():
        if path.resolve() in seen:
            raise GptbenchError(f"{option} {path}: the same file as {seen[path.resolve()]}; give each export its own file")
        seen[path.resolve()] = option
        if path.is_dir():
            raise GptbenchError(f"{option} {path}: is a folder; give a file name")
        if path.exists() and not force:
            raise GptbenchError(f"{option} {path}: the file already exists; pass --force to replace it")
    return chosen


def write_new(path: Path, text: str, force: bool) -> Path:
    """Write `text` to `path` atomically (temp file, then rename); an existing file is replaced only with `force`.
    A failed write raises WriteFailed naming the file and the OS's reason, and leaves no temporary file."""
    make_folder(path.parent)
    tmp = write_temp_text(path.parent, text, path)
    if force:
        replace_with(tmp, path)
    elif claim_name(tmp, [path]) is None:
        raise GptbenchError(f"{path}: the file already exists; pass --force to replace it")
    return path
