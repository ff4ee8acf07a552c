"""A doctor's check: one line of the diagnosis with its status and advice, and the guard that turns a probe which
raises into a failed line instead of a traceback."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from gptbench.errors import innermost_message

OK, WARN, FAIL, INFO = "ok", "warn", "fail", "info"


@dataclass
class Check:
    """One line of the diagnosis: `advice` says what a non-ok status costs and how to fix it."""

    area: str
    name: str
    status: str
    value: str
    advice: str | None = None


@dataclass
class Diagnosis:
    checks: list[Check] = field(default_factory=list)
    can_run: bool = True  # False only when gptbench could not measure anything here
    elapsed_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"schema": "gptbench.doctor/1", **asdict(self)}


def guarded(area: str, name: str, probe: Callable[[], Check | list[Check]]) -> list[Check]:
    """Run one probe; an exception becomes a failed check naming it, never a traceback."""
    try:
        found = probe()
    except Exception as e:  # noqa: BLE001 - doctor reports what broke and carries on
        return [Check(area, name, FAIL, f"the check itself failed: {innermost_message(e, 200)}")]
    return found if isinstance(found, list) else [found]
