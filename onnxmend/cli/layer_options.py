"""What ``validate --layers`` and ``diff`` share on the command line: the report folder, the memory budget,
the capture strategy, and the per-layer table with its summary."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Callable

import click
from rich.markup import escape

from onnxmend.cli.options import force_option, out_option
from onnxmend.cli.render import VERDICT_STYLE, say, show, verdict
from onnxmend.flows.layer_tables import layer_table, summary_lines
from onnxmend.runtime.layers.report import LayerReport


def layer_options(prefix: str = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``-o DIR``, ``--budget MiB``, ``--strategy chunks|bisect`` and ``--force``."""

    def decorate(func: Callable[..., Any]) -> Callable[..., Any]:
        @out_option("dir", f"{prefix}write report.json, report.md and layers.png here.", dest="out_dir", default=None)
        @click.option("--budget", type=click.FloatRange(min=1), default=256, show_default=True,
                      help=f"{prefix}MiB of captured tensors held at once (both sides together).")
        @click.option("--strategy", type=click.Choice(["chunks", "bisect"]), default="chunks", show_default=True,
                      help=f"{prefix}measure every layer in budget-sized chunks, or bisect to the first failure.")
        @force_option
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            return func(*args, **kwargs)

        return wrapper

    return decorate


def print_layers(report: LayerReport, title: str, out_dir: str | None) -> None:
    """The per-layer table, the summary lines with the first wrong layer, and where the files went."""
    show(layer_table(report, title))
    for line in summary_lines(report):
        say(escape(line))
    verdict(f"[{VERDICT_STYLE[report.verdict]}]{escape(report.headline())}[/]")
    if out_dir:
        verdict(f"report: {Path(out_dir) / 'report.md'}, plot {Path(out_dir) / 'layers.png'}")
