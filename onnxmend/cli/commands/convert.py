"""``onnxmend convert SOURCE -o DIR``: export, fix, validate against the source, write the artifacts."""

from __future__ import annotations

import re
from pathlib import Path

import click
from rich.markup import escape

from onnxmend.cli.options import export_options, force_option, interface_options, pass_options, tolerance_options
from onnxmend.cli.render import console, print_interface, print_json, print_validation, progress, render, stdout_for_json
from onnxmend.exporters.options import ExportOptions
from onnxmend.flows.convert import ConvertOptions, convert
from onnxmend.flows.tables import ops_table, passes_table


def default_out_dir(source: str) -> Path:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", source.rstrip("/").split("/")[-1].split(":")[-1]).strip("_.")
    return Path("onnxmend-out") / (stem or "model")


@click.command("convert")
@click.argument("source")
@click.option("-o", "--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="Output folder (default: onnxmend-out/<model name>).")
@export_options
@pass_options
@click.option("--layout", type=click.Choice(["auto", "nchw", "keep"]), default="auto", show_default=True,
              help="auto = NCHW I/O for NHWC sources, Transposes allowed around fused norms (fastest on "
                   "onnxruntime); nchw = NCHW I/O and no Transpose inside; keep = the source's I/O, at most one "
                   "Transpose per NHWC input/output.")
@interface_options
@tolerance_options
@click.option("--quantize", is_flag=True, help="Also write the dynamic int8 artifact (see `onnxmend quantize`).")
@click.option("--bench", "run_bench", is_flag=True, help="Also benchmark raw, fixed (and int8) graphs and the source.")
@force_option
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report instead of tables.")
@click.option("-v", "--verbose", is_flag=True, help="Show every skipped candidate and why.")
def command(source: str, out_dir: str | None, export_opts: ExportOptions, preset: str, pass_names: str | None,
            verify: bool, layout: str, keep_interface: bool, max_growth: float, atol: float, rtol: float, seed: int,
            provider: str, threads: int, quantize: bool, run_bench: bool, force: bool, as_json: bool,
            verbose: bool) -> int:
    """Export SOURCE to ONNX, fix it, and validate it against the source framework.

    SOURCE is model.onnx, model.keras, model.h5, a SavedModel folder, keras:NAME, torch:pkg.mod:factory,
    file.py:factory, model.pt2 or zoo:NAME. Writes raw.onnx, model.onnx, report.json and report.md.
    Exit code 0 on parity, 1 on mismatch or a degenerate reference, 2 on bad input.
    """
    out = Path(out_dir) if out_dir else default_out_dir(source)
    options = ConvertOptions(export_opts, preset, pass_names, verify, layout, atol, rtol, seed, provider, threads,  # type: ignore[arg-type]
                             quantize=quantize, bench=run_bench, force=force, keep_interface=keep_interface,
                             max_growth=max_growth)
    with stdout_for_json(as_json), progress(not as_json) as say:
        result = convert(source, out, options, progress=say)
    if as_json:
        print_json(result.to_json())
        return result.exit_code
    console.print(f"[bold]{escape(source)}[/] → {out}  ({result.export.exporter}; layout {result.layout}, "
                  f"--layout {result.layout_choice})", highlight=False)
    for note in result.export.notes:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    console.print(render(passes_table(result.pipeline, verbose)))
    console.print(render(ops_table(result.before.ops, result.after.ops)))
    print_interface(result.interface, result.pipeline)
    if result.pipeline.unverified_reason:
        console.print(f"[bold yellow]passes not gated:[/] {escape(result.pipeline.unverified_reason)}", highlight=False)
    title = f"parity vs {result.export.framework} (fixed graph, {result.validation.provider})"
    print_validation(result.validation, title)
    console.print(f"report: {out / 'report.md'}")
    if result.quantized is not None:
        state = "passed" if result.quantized.passed else "FAILED"
        console.print(f"int8 artifact: {out / 'model.int8.onnx'} (gate {state})")
    if result.benchmark is not None:
        console.print(f"benchmark: {out / 'bench.json'}, chart {out / 'bench.png'}")
    return result.exit_code
