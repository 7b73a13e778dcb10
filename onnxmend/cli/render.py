"""Terminal rendering shared by the commands: rich tables for people, JSON for machines.

A :class:`~onnxmend.core.table.Table` built by a flow is drawn here with rich; ``report.md`` draws the same
table with ``core.table.to_markdown``.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from typing import Callable, Iterator, Sequence

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from onnxmend.core.table import Table
from onnxmend.core.interface_diff import TensorChange
from onnxmend.flows.interface import interface_table
from onnxmend.flows.tables import parity_table, weights_line
from onnxmend.passes.infra.records import PipelineReport
from onnxmend.runtime.validate import Validation

console = Console()
err_console = Console(stderr=True)

VERDICT_STYLE = {"pass": "bold green", "mismatch": "bold red", "degenerate": "bold yellow", "unverified": "bold yellow"}
TONE_STYLE = {"good": "green", "bad": "red", "warn": "yellow", "dim": "dim", "bold": "bold", "": ""}


def print_json(data: object) -> None:
    click.echo(json.dumps(data, indent=2, default=str))


@contextlib.contextmanager
def stdout_for_json(enabled: bool) -> Iterator[None]:
    """While a ``--json`` command works, whatever a library prints (Python or native, to file descriptor 1)
    goes to stderr, so that stdout holds the JSON document and nothing else."""
    if not enabled:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    python_stdout, sys.stdout = sys.stdout, sys.stderr
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 1)
        os.close(saved)
        sys.stdout = python_stdout


def render(table: Table) -> RichTable:
    """A core table as a rich table (cells are literal text, never markup)."""
    out = RichTable(title=table.title or None, title_justify="left")
    for column in table.columns:
        out.add_column(column.name, justify=column.align)
    for row in table.rows:
        out.add_row(*(_styled(cell.text, TONE_STYLE[cell.tone]) for cell in row))
    if not table.rows:
        out.add_row(*([escape(table.empty)] + [""] * (len(table.columns) - 1)))
    return out


def _styled(text: str, style: str) -> str:
    return f"[{style}]{escape(text)}[/]" if style and text else escape(text)


def print_interface(changes: Sequence[TensorChange], pipeline: PipelineReport,
                    title: str = "source → written model") -> None:
    """The interface table (every changed input/output, or "unchanged") and the weights' growth."""
    t = interface_table(changes)
    t.title = f"interface ({title})"
    console.print(render(t))
    console.print(escape(weights_line(pipeline)), highlight=False)


def print_validation(validation: Validation, title: str) -> None:
    """The parity table, why a model could not be compared (if so), and the verdict."""
    console.print(render(parity_table(validation.comparison, title)))
    for line in filter(None, (validation.failure, validation.unverified)):
        console.print(f"[yellow]{escape(line)}[/]", highlight=False)
    if validation.sizes:
        console.print(f"[dim]compared at: {escape('; '.join(validation.sizes))}[/]", highlight=False)
    console.print(f"[{VERDICT_STYLE[validation.verdict]}]{validation.verdict.upper()}[/]")


@contextlib.contextmanager
def progress(enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr that shows the current step; silent when not a terminal or disabled."""
    if not enabled or not err_console.is_terminal:
        yield lambda _msg: None
        return
    with err_console.status("starting") as status:
        yield lambda msg: status.update(msg)
