"""Terminal rendering shared by the commands: rich tables for people, JSON for machines.

A :class:`~onnxmend.core.table.Table` built by a flow is drawn here with rich; ``report.md`` draws the same
table with ``core.table.to_markdown``. Output that is not a terminal (a pipe, a log file, CI) is drawn at
full width, so a name is never cut (``onnxmend zoo | cat``); on a terminal the naming column is kept whole
and the other columns wrap around it.

How much is said is one setting for every command (:func:`set_verbosity`): ``-q`` keeps the verdict lines
only, ``-v`` adds detail. Progress goes to stderr: a spinner with the elapsed time on a terminal, a
timestamped line for each step that takes a while otherwise.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, Sequence

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table as RichTable

from onnxmend.core.fileio import json_text
from onnxmend.core.interface_diff import TensorChange
from onnxmend.core.table import Table
from onnxmend.flows.interface import interface_table
from onnxmend.flows.quantize import QuantizeResult
from onnxmend.flows.tables import bench_caption, bench_table, parity_table, weights_line
from onnxmend.passes.infra.records import PipelineReport
from onnxmend.runtime.bench.results import BenchResult
from onnxmend.runtime.data import InputsUsed
from onnxmend.runtime.validate import Validation

FULL_WIDTH = 10_000  # columns for output that is not a terminal: nothing wraps or is cut


def _console(stderr: bool = False) -> Console:
    probe = Console(stderr=stderr)
    return probe if probe.is_terminal else Console(stderr=stderr, width=FULL_WIDTH)


console = _console()
err_console = _console(stderr=True)

VERDICT_STYLE = {"pass": "bold green", "mismatch": "bold red", "degenerate": "bold yellow", "unverified": "bold yellow"}
TONE_STYLE = {"good": "green", "bad": "red", "warn": "yellow", "dim": "dim", "bold": "bold", "": ""}

QUIET, NORMAL, VERBOSE = 0, 1, 2
_state = {"verbosity": NORMAL}


def set_verbosity(level: int) -> None:
    _state["verbosity"] = level


def verbosity() -> int:
    return _state["verbosity"]


def say(text: str) -> None:
    """A line of the summary (rich markup allowed); ``-q`` drops it."""
    if verbosity() >= NORMAL:
        console.print(text, highlight=False)


def verdict(text: str) -> None:
    """A line that is printed even with ``-q``: the verdict and where the files went."""
    console.print(text, highlight=False)


def show(table: Table | RichTable) -> None:
    """A table of the summary; ``-q`` drops it."""
    if verbosity() >= NORMAL:
        console.print(render(table) if isinstance(table, Table) else table)


def print_json(data: object) -> None:
    click.echo(json_text(data, default=str))


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
    """A core table as a rich table (cells are literal text, never markup; whole columns never wrap)."""
    out = RichTable(title=table.title or None, title_justify="left")
    for index, column in enumerate(table.columns):
        longest = max([len(column.name)] + [len(row[index].text) for row in table.rows])
        out.add_column(column.name, justify=column.align, no_wrap=column.whole,
                       min_width=longest if column.whole else None)
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
    show(t)
    say(escape(weights_line(pipeline)))


def print_validation(validation: Validation, title: str) -> None:
    """The parity table, why a model could not be compared (if so), and the verdict."""
    show(parity_table(validation.comparison, title))
    for line in filter(None, (validation.failure, validation.unverified)):
        verdict(f"[yellow]{escape(line)}[/]")
    if validation.inputs is not None:
        say(f"inputs: {escape(validation.inputs.summary)}")
    if validation.sizes and (validation.inputs is None or validation.inputs.kind == "synthetic"):
        say(f"[dim]compared at: {escape('; '.join(validation.sizes))}[/]")
    verdict(f"[{VERDICT_STYLE[validation.verdict]}]{validation.verdict.upper()}[/]")


def print_data(inputs: InputsUsed | None, saved: Path | None, what: str = "inputs") -> None:
    """Which inputs were used (``what`` names them), and where ``--save-outputs`` wrote the outputs (kept with -q)."""
    if inputs is not None:
        say(f"{what}: {escape(inputs.summary)}")
    if saved is not None:
        verdict(f"outputs: {escape(str(saved))}")


def int8_verdict(result: QuantizeResult) -> str:
    """One line: the int8 gate's verdict with size, speed and accuracy, and what falls short (markup)."""
    contents, worth = result.contents, result.contents.worth
    facts = []
    if worth and worth.size_ratio is not None:
        facts.append(f"size {worth.size_ratio:.2f}×")
    if worth and worth.speedup is not None:
        facts.append(f"speed {worth.speedup:.2f}× fp32")
    reports = [r for r in (contents.vs_fp32, contents.vs_source) if r]
    facts += [f"cosine {min(o.cosine for o in r.outputs):.4f} vs {r.reference}" for r in reports if r.outputs]
    style, word = {"pass": ("bold green", "PASS"), "fail": ("bold red", "FAIL"),
                   "no-gain": ("bold yellow", "NO GAIN")}[contents.verdict]
    line = f"[{style}]{word}[/] {escape(', '.join(facts))}"
    if contents.verdict == "no-gain":
        line += (" — accepted (--allow-no-gain)" if contents.allow_no_gain else
                 " — not worth shipping (--allow-no-gain accepts it)")
    return line


def print_bench(result: BenchResult) -> None:
    """The bench table, its settings and the footnotes its notes column points to."""
    shown, footnotes = bench_table(result)
    show(shown)
    say(f"[dim]{escape(bench_caption(result))}[/]")
    for index, note in enumerate(footnotes, 1):
        say(f"[dim]\\[{index}][/] {escape(note)}")
    for note in result.notes:
        say(f"[dim]note:[/] {escape(note)}")


PROGRESS_PREFIX = "··"  # how a progress line starts in a log, so a reader (or a test) can tell it from output


@contextlib.contextmanager
def progress(enabled: bool = True) -> Iterator[Callable[[str], None]]:
    """Progress on stderr: a spinner naming the step and the elapsed time on a terminal; in a log or CI, one
    timestamped line (``·· 10:31:02 +3.2s exporting ...``) for each step still running after
    :data:`LOG_AFTER_S`, so quick steps do not flood the log and a slow or hung one is always named;
    nothing with ``-q`` or ``--json``."""
    if not enabled or verbosity() == QUIET:
        yield lambda _msg: None
        return
    if err_console.is_terminal:
        with _elapsed_status() as update:
            yield update
        return
    log = _StepLog(time.monotonic())
    try:
        yield log.step
    finally:
        log.close()


LOG_AFTER_S = 0.5


class _StepLog:
    """The log form of progress: a step's line is written once it has run for LOG_AFTER_S."""

    def __init__(self, start: float) -> None:
        self.start = start
        self.timer: threading.Timer | None = None

    def step(self, msg: str) -> None:
        self.close()
        stamp, since = time.strftime("%H:%M:%S"), time.monotonic() - self.start
        line = f"{PROGRESS_PREFIX} {stamp} +{since:.1f}s {msg}"
        self.timer = threading.Timer(LOG_AFTER_S, lambda: err_console.print(escape(line), highlight=False))
        self.timer.daemon = True
        self.timer.start()

    def close(self) -> None:
        if self.timer is not None:
            self.timer.cancel()


@contextlib.contextmanager
def _elapsed_status() -> Iterator[Callable[[str], None]]:
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn(),
                  console=err_console, transient=True) as bar:
        task = bar.add_task("starting", total=None)
        yield lambda msg: bar.update(task, description=escape(msg))
