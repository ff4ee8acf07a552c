"""`gptbench doctor`: what this machine can do and what would slow gptbench down, on one screen."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from gptbench.cli import checks
from gptbench.cli.common import MEASURE, app, err, friendly, out

DEVICE_KINDS = ("all", "cuda", "mps", "cpu")  # doctor.system.DEVICE_KINDS, kept here torch-free (a test holds them equal)

if TYPE_CHECKING:  # types only: doctor's checks import torch
    from gptbench.doctor.checks import Diagnosis

MARKS = {"ok": "[green]ok[/green]", "warn": "[yellow]warn[/yellow]", "fail": "[red]fail[/red]", "info": "[dim]info[/dim]"}


@app.command(rich_help_panel=MEASURE)
@friendly
def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print the checks as JSON instead of the table.")] = False,
    device: Annotated[
        str,
        typer.Option(
            help="all, cuda, mps or cpu: which devices get the training-step, kernel and compile checks.",
            callback=checks.one_of(*DEVICE_KINDS),
        ),
    ] = "all",
) -> None:
    """What this machine can do (devices, kernels, compile, NVML, links, CPU) and what would slow gptbench down."""
    try:
        from gptbench.doctor.system import diagnose
    except Exception as e:  # noqa: BLE001 - torch that will not import: gptbench cannot run here at all
        err.print(f"[red]error:[/red] torch does not import ({escape(str(e).splitlines()[0] if str(e) else type(e).__name__)});"
                  " reinstall torch for this Python (see the README's Quick start)", highlight=False, soft_wrap=True)  # fmt: skip
        raise typer.Exit(1) from None
    with err.status("checking…") as status:
        diagnosis = diagnose(lambda c: status.update(f"{c.area}: {c.name}"), device.strip().lower())
    if as_json:
        out.print_json(json.dumps(diagnosis.to_dict()))
    else:
        out.print(doctor_table(diagnosis))
        bad = [c for c in diagnosis.checks if c.status in ("warn", "fail")]
        summary = f"{len(diagnosis.checks)} checks in {diagnosis.elapsed_s:.0f} s"
        out.print(summary + (f"; {len(bad)} need attention (warn/fail above)" if bad else "; nothing to fix"), highlight=False)
    if not diagnosis.can_run:
        err.print("[red]error:[/red] gptbench could not run a training step on any device here (see the failed checks)")
        raise typer.Exit(1)


def doctor_table(diagnosis: Diagnosis) -> Table:
    """The checks, one line each, with what a non-ok line costs and how to fix it beneath the value."""
    table = Table(title="gptbench doctor", title_justify="left", show_lines=False)
    for name in ("where", "check", "", "what was found"):
        table.add_column(name, overflow="fold")
    previous = None
    for c in diagnosis.checks:
        if previous is not None and c.area != previous:
            table.add_section()
        text = escape(c.value) + (f"\n[dim]→ {escape(c.advice)}[/dim]" if c.advice else "")
        table.add_row(c.area if c.area != previous else "", c.name, MARKS.get(c.status, c.status), text)
        previous = c.area
    return table
