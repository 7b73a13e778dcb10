"""``onnxmend convert SOURCE -o DIR``: export, fix, validate against the source, write the artifacts."""

from __future__ import annotations

import re
from pathlib import Path

import click

from onnxmend.commands.options import export_options, pass_options, tolerance_options
from onnxmend.commands.render import VERDICT_STYLE, console, ops_table, parity_table, passes_table, print_json, progress
from onnxmend.exporters.options import ExportOptions
from onnxmend.pipeline import ConvertOptions, convert
from onnxmend.runtime.report import HEADLINE_OPS


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
@tolerance_options
@click.option("--quantize", is_flag=True, help="Also write the dynamic int8 artifact (see `onnxmend quantize`).")
@click.option("--bench", "run_bench", is_flag=True, help="Also benchmark raw, fixed (and int8) graphs and the source.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report instead of tables.")
@click.option("-v", "--verbose", is_flag=True, help="Show every skipped candidate and why.")
def command(source: str, out_dir: str | None, export_opts: ExportOptions, preset: str, pass_names: str | None,
            verify: bool, layout: str, atol: float, rtol: float, seed: int, provider: str, threads: int,
            quantize: bool, run_bench: bool, as_json: bool, verbose: bool) -> int:
    """Export SOURCE to ONNX, fix it, and validate it against the source framework.

    SOURCE is model.onnx, model.keras, model.h5, a SavedModel folder, keras:NAME, torch:pkg.mod:factory,
    file.py:factory, model.pt2 or zoo:NAME. Writes raw.onnx, model.onnx, report.json and report.md.
    Exit code 0 on parity, 1 on mismatch or a degenerate reference, 2 on bad input.
    """
    out = Path(out_dir) if out_dir else default_out_dir(source)
    options = ConvertOptions(export_opts, preset, pass_names, verify, layout, atol, rtol, seed, provider, threads)  # type: ignore[arg-type]
    with progress(not as_json) as say:
        result = convert(source, out, options, progress=say)
        extras = _extras(result, quantize, run_bench, say)
    # A failing int8 gate fails the command too: the artifact it names is not fit to ship.
    code = max(result.exit_code, 0 if extras.get("quantize", {}).get("passed", True) else 1)
    if as_json:
        print_json(result.to_json() | extras)
        return code
    console.print(f"[bold]{source}[/] → {out}  ({result.export.exporter}; layout {result.layout}, --layout {result.layout_choice})")
    for note in result.export.notes:
        console.print(f"[yellow]note:[/] {note}")
    console.print(passes_table(result.pipeline, verbose))
    console.print(ops_table(result.before.ops, result.after.ops, HEADLINE_OPS))
    console.print(parity_table(result.validation, f"parity vs {result.export.framework} (fixed graph, {result.validation.provider})"))
    verdict = result.validation.verdict
    console.print(f"[{VERDICT_STYLE[verdict]}]{verdict.upper()}[/]  report: {out / 'report.md'}")
    for line in extras.get("lines", []):
        console.print(line)
    return code


def _extras(result, quantize: bool, run_bench: bool, say) -> dict:
    """Optional int8 artifact and benchmark, run after the main report is written."""
    extras: dict = {"lines": []}
    out = result.out_dir
    if quantize:
        from onnxmend.runtime.quantize import quantize_model

        say("quantizing")
        q = quantize_model(out / "model.onnx", out, source=result.export, report_name="quantize.md")
        extras["quantize"] = {"passed": q.passed, "manifest": q.manifest}
        extras["lines"].append(f"int8 artifact: {out / 'model.int8.onnx'} (gate {'passed' if q.passed else 'FAILED'})")
    if run_bench:
        from onnxmend.runtime.bench import BenchOptions, bench
        from onnxmend.runtime.bench_report import write_report

        say("benchmarking")
        models = [out / "raw.onnx", out / "model.onnx"] + ([out / "model.int8.onnx"] if quantize else [])
        b = bench([str(m) for m in models], source=result.source, options=BenchOptions())
        json_path, chart = write_report(b, out)
        extras["bench"] = b.to_json()
        extras["lines"].append(f"benchmark: {json_path}" + (f", chart {chart}" if chart else ""))
    return extras
