"""``onnxmend diff SRC_A SRC_B``: two ports of one model, layer by layer; the first pair that diverges."""

from __future__ import annotations

from pathlib import Path

import click
from rich.markup import escape

from onnxmend.cli.layer_options import layer_options, print_layers
from onnxmend.cli.options import export_options, report_options, tolerance_options
from onnxmend.cli.render import print_json, progress, say, stdout_for_json
from onnxmend.exporters.options import ExportOptions
from onnxmend.flows.diff import diff
from onnxmend.runtime.layers.blame import BlameOptions


@click.command("diff")
@click.argument("source_a")
@click.argument("source_b")
@export_options
@tolerance_options
@layer_options()
@report_options("Log what each step does.")
def command(source_a: str, source_b: str, export_opts: ExportOptions, atol: float, rtol: float, seed: int,
            provider: str, threads: int, out_dir: str | None, budget: float, strategy: str, force: bool,
            as_json: bool, verbose: bool) -> int:
    """Align SOURCE_A and SOURCE_B by structure and name the first layer pair that diverges.

    Any two SOURCE forms (a .keras file and a file.py:factory, two ONNX files, a Keras model and its torch
    port). Both are exported, normalized with the fix preset (NCHW) and run on onnxruntime (CPU) on the same
    seeded input. Exit code 0 when every aligned pair passes, 1 when one diverges, 2 on bad input.
    """
    options = BlameOptions(seed, atol, rtol, int(budget * 2**20), strategy)  # type: ignore[arg-type]
    with stdout_for_json(as_json), progress(not as_json) as step:
        report = diff(source_a, source_b, export_opts, options, Path(out_dir) if out_dir else None, force=force,
                      progress=step)
    if as_json:
        print_json(report.to_json())
        return report.exit_code
    weights: dict = report.extra.get("weights", {})  # type: ignore[assignment]
    differing = {k: v for k, v in weights.items() if v != "equal"}
    if weights:
        first = f"; first that differs: {next(iter(differing))}: {next(iter(differing.values()))}" if differing else ""
        say(escape(f"weights: {len(weights) - len(differing)}/{len(weights)} aligned weighted pairs equal after "
                   f"the layout change{first}"))
    print_layers(report, f"{source_a} (A) vs {source_b} (B), aligned pairs", out_dir)
    return report.exit_code
