"""``onnxmend convert SOURCE -o DIR``: export, fix, validate against the source, write the artifacts."""

from __future__ import annotations

import re
from pathlib import Path

import click
from rich.markup import escape

from onnxmend.cli.options import (
    allow_no_gain_option,
    data_options,
    export_options,
    force_option,
    interface_options,
    layout_option,
    out_option,
    pass_options,
    report_options,
    tolerance_options,
)
from onnxmend.cli.render import (
    int8_verdict,
    print_bench,
    print_data,
    print_interface,
    print_json,
    print_validation,
    progress,
    say,
    show,
    stdout_for_json,
    verdict,
)
from onnxmend.exporters.options import ExportOptions
from onnxmend.flows.convert import ConvertOptions, convert
from onnxmend.flows.tables import ops_table, passes_table
from onnxmend.runtime.data import DataOptions


def default_out_dir(source: str) -> Path:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", source.rstrip("/").split("/")[-1].split(":")[-1]).strip("_.")
    return Path("onnxmend-out") / (stem or "model")


@click.command("convert")
@click.argument("source")
@out_option("dir", "Output folder (default: onnxmend-out/<model name>).", dest="out_dir", default=None)
@export_options
@pass_options
@layout_option("NCHW I/O for NHWC sources")
@interface_options
@tolerance_options
@data_options
@click.option("--quantize", is_flag=True, help="Also write the dynamic int8 artifact (see `onnxmend quantize`).")
@allow_no_gain_option
@click.option("--bench", "run_bench", is_flag=True, help="Also benchmark raw, fixed (and int8) graphs and the source.")
@force_option
@report_options("Show every skipped candidate and why.")
def command(source: str, out_dir: str | None, export_opts: ExportOptions, preset: str, pass_names: str | None,
            verify: bool, layout: str, keep_interface: bool, max_growth: float, atol: float, rtol: float, seed: int,
            provider: str, threads: int, data: DataOptions, quantize: bool, allow_no_gain: bool, run_bench: bool,
            force: bool, as_json: bool, verbose: bool) -> int:
    """Export SOURCE to ONNX, fix it, and validate it against the source framework.

    SOURCE is model.onnx, model.keras, model.h5, a SavedModel folder, keras:NAME, torch:pkg.mod:factory,
    file.py:factory, model.pt2 or zoo:NAME. Writes raw.onnx, model.onnx, report.json and report.md.
    Exit code 0 on parity, 1 on mismatch or a degenerate reference, 2 on bad input, 3 when the rewrites
    or the parity could not be checked numerically, 4 on an internal error.
    """
    out = Path(out_dir) if out_dir else default_out_dir(source)
    options = ConvertOptions(export_opts, preset, pass_names, verify, layout, atol, rtol, seed, provider, threads,  # type: ignore[arg-type]
                             quantize=quantize, bench=run_bench, force=force, allow_no_gain=allow_no_gain,
                             keep_interface=keep_interface, max_growth=max_growth, data=data)
    with stdout_for_json(as_json), progress(not as_json) as step:
        result = convert(source, out, options, progress=step)
    if as_json:
        print_json(result.to_json())
        return result.exit_code
    say(f"[bold]{escape(source)}[/] → {out}  ({result.export.exporter}; layout {result.layout}, "
        f"--layout {result.layout_choice})")
    for note in result.export.notes:
        say(f"[yellow]note:[/] {escape(note)}")
    show(passes_table(result.pipeline, verbose))
    show(ops_table(result.before.ops, result.after.ops))
    print_interface(result.interface, result.pipeline)
    if result.pipeline.unverified_reason:
        verdict(f"[bold yellow]passes not gated:[/] {escape(result.pipeline.unverified_reason)}")
    title = f"parity vs {result.export.framework} (fixed graph, {result.validation.provider})"
    print_validation(result.validation, title)
    gate, checked = result.gate_inputs, result.validation.inputs
    if gate is not None and gate.kind == "loaded" and (checked is None or gate.summary != checked.summary):
        print_data(gate, None, "pass gate inputs")
    print_data(None, result.saved_outputs)
    verdict(f"report: {out / 'report.md'}")
    if result.layers is not None:
        verdict(f"[bold]{escape(result.layers.headline())}[/]  per layer: {out / 'layers.md'}, plot {out / 'layers.png'}")
    if result.quantized is not None:
        verdict(f"int8 artifact {out / 'model.int8.onnx'}: {int8_verdict(result.quantized)}")
    elif result.int8_skipped:
        accepted = "accepted (--allow-no-gain)" if result.allow_no_gain else "--allow-no-gain accepts it"
        verdict(f"[bold yellow]int8: NO GAIN[/] {escape(result.int8_skipped)} No int8 artifact written; {accepted}.")
    if result.benchmark is not None:
        print_bench(result.benchmark)
        verdict(f"benchmark: {out / 'bench.json'}, chart {out / 'bench.png'}")
    return result.exit_code
