"""Terminal rendering shared by the commands: rich tables for people, JSON for machines."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Callable, Iterator
import contextlib

import click
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    from onnxmend.passes.infra.records import PipelineReport
    from onnxmend.runtime.validate import Validation

console = Console()
err_console = Console(stderr=True)

VERDICT_STYLE = {"pass": "bold green", "mismatch": "bold red", "degenerate": "bold yellow"}


def print_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@contextlib.contextmanager
def progress(enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr that shows the current step; silent when not a terminal or disabled."""
    if not enabled or not err_console.is_terminal:
        yield lambda _msg: None
        return
    with err_console.status("starting") as status:
        yield lambda msg: status.update(msg)


def parity_table(validation: Validation, title: str) -> Table:
    table = Table(title=title, title_justify="left")
    for col in ("output", "shape", "max abs", "max abs/scale", "cosine", "needed atol", "verdict"):
        table.add_column(col, justify="right" if col not in ("output", "verdict") else "left")
    for o in validation.comparison.outputs:
        style = VERDICT_STYLE[o.verdict]
        table.add_row(
            o.name, "x".join(map(str, o.shape)), f"{o.max_abs:.3g}", f"{o.max_abs_scaled:.3g}",
            f"{o.cosine:.7f}", f"{o.needed_atol:.3g}", f"[{style}]{o.verdict}[/]" + (f" {o.reason}" if o.reason else ""),
        )
    return table


def passes_table(report: PipelineReport, verbose: bool = False) -> Table:
    table = Table(title=f"passes ({report.rounds} round(s))", title_justify="left")
    for col in ("pass", "status", "changed", "op deltas"):
        table.add_column(col)
    for r in report.records:
        status = "[green]applied[/]" if r.status == "applied" else f"[red]rejected[/]: {r.reason}"
        table.add_row(r.name, status, str(r.changed), r.delta_text() or "-")
    if verbose:
        for name, skips in report.skipped.items():
            for s in skips:
                table.add_row(name, "[dim]skipped[/]", "", f"{s.node}: {s.reason}")
    return table


def ops_table(before: dict[str, int], after: dict[str, int], headline: tuple[str, ...]) -> Table:
    table = Table(title="ops", title_justify="left")
    table.add_column("op")
    table.add_column("raw", justify="right")
    table.add_column("fixed", justify="right")
    ops = [op for op in headline if before.get(op) or after.get(op)]
    ops += sorted(op for op in set(before) | set(after) if op not in ops and before.get(op, 0) != after.get(op, 0))
    for op in ops:
        table.add_row(op, str(before.get(op, 0)), str(after.get(op, 0)))
    table.add_row("[bold]nodes[/]", str(sum(before.values())), str(sum(after.values())))
    return table
