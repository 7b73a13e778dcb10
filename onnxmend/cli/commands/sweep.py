"""``onnxmend sweep [LIST] [--zoo [FILTER]]``: many models × presets × providers into one table.

The work is :func:`onnxmend.flows.sweep.sweep`; this command parses, shows progress and renders the table.
"""

from __future__ import annotations

import click
from rich.markup import escape

from onnxmend.cli.options import force_option, out_option, report_options, seed_option, trust_option
from onnxmend.cli.render import print_json, progress, say, show, stdout_for_json, verdict
from onnxmend.exporters.options import DEFAULT_OPSET, ExportOptions
from onnxmend.flows.sweep import SourceLine, SweepOptions, read_sources, sweep, zoo_sources
from onnxmend.flows.sweep_result import SweepRow, sweep_table


def _names(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    names = tuple(dict.fromkeys(p.strip().lower() for p in value.split(",") if p.strip()))
    if not names:
        raise click.BadParameter(f"{value!r} names nothing; give a comma-separated list.")
    return names


@click.command("sweep")
@click.argument("list_file", required=False, type=click.Path(dir_okay=False), metavar="[LIST]")
@click.option("--zoo", "zoo_filter", is_flag=False, flag_value="", default=None, metavar="[FILTER]",
              help="Also sweep zoo models: all of them, or those matching FILTER (comma-separated names, "
                   "substrings or globs, e.g. torch or 'gap*,depthwise-keras').")
@out_option("dir", dest="out_dir", default="onnxmend-out/sweep",
              show_default=True, help="Folder for sweep.jsonl, sweep.md and each model's artifacts.")
@click.option("--preset", "presets", callback=_names, default="fix", show_default=True,
              metavar="fix,portable", help="Pass presets; one row per model and preset.")
@click.option("--provider", "providers", callback=_names, default="auto", show_default=True,
              metavar="auto,cpu,cuda", help="onnxruntime providers; one row per model, preset and provider.")
@click.option("--engine", type=click.Choice(["serial", "ray"]), default="serial", show_default=True,
              help="serial: one model after another here; ray: models as Ray tasks (the `ray` extra).")
@click.option("--address", default=None, envvar="RAY_ADDRESS", show_envvar=True,
              help="With --engine ray: the cluster to join (e.g. ray://head:10001, auto); none starts a local instance.")
@click.option("--cpus-per-model", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="With --engine ray: CPUs each model's task reserves.")
@click.option("--opset", type=click.IntRange(7, 23), default=DEFAULT_OPSET, show_default=True,
              help="Target ONNX opset (torch's dynamo exporter emits at least 18).")
@click.option("--dynamic-batch", is_flag=True, help="Export with a dynamic batch axis.")
@click.option("--torch-exporter", type=click.Choice(["dynamo", "legacy"]), default="dynamo", show_default=True,
              help="torch.onnx exporter for every torch model (input shapes go on each LIST line).")
@trust_option
@force_option
@seed_option("Seed for synthesised inputs and weights.")
@click.option("--threads", type=click.IntRange(min=0), default=0, show_default=True,
              help="onnxruntime intra-op threads (0 = onnxruntime's default).")
@click.option("--atol", type=click.FloatRange(min=0), default=1e-4, show_default=True,
              help="Absolute tolerance, times max(1, max|reference|).")
@click.option("--rtol", type=click.FloatRange(min=0), default=1e-3, show_default=True, help="Relative tolerance.")
@click.option("--bench-seconds", type=click.FloatRange(min=0), default=0.5, show_default=True,
              help="Timed seconds of the fixed graph's bench per row (0: no latency).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=0, min_open=True), default=600.0,
              show_default=True, help="Seconds one model × preset × provider may take before it is stopped.")
@report_options("Log each model's steps as its worker reports them.")
def command(list_file: str | None, zoo_filter: str | None, out_dir: str, presets: tuple[str, ...],
            providers: tuple[str, ...], engine: str, address: str | None, cpus_per_model: float,
            opset: int, dynamic_batch: bool, torch_exporter: str, trust_source: bool, force: bool, seed: int, threads: int, atol: float, rtol: float, bench_seconds: float,
            timeout_s: float, as_json: bool, verbose: bool) -> int:
    """Convert, validate and time every model of LIST (one SOURCE per line, optionally followed by
    --input NAME:SHAPE) and/or of the zoo, with each preset and provider, into one table.

    Rows are written to OUT/sweep.jsonl and OUT/sweep.md after every model. A model that fails gets a row
    saying why, and the sweep goes on. Exit code 0 when every row passed, 1 otherwise, 2 on bad input.
    """
    sources: list[SourceLine] = read_sources(list_file) if list_file else []
    if zoo_filter is not None:
        sources += zoo_sources(zoo_filter)
    if not sources:
        raise click.UsageError("Give a LIST file of sources, --zoo [FILTER], or both.")
    export_opts = ExportOptions(opset=opset, dynamic_batch=dynamic_batch, torch_exporter=torch_exporter,  # type: ignore[arg-type]
                                trust_source=trust_source)
    options = SweepOptions(presets, providers, engine, address if engine == "ray" else None,  # type: ignore[arg-type]
                           cpus_per_model, export_opts, seed, threads, atol, rtol, bench_seconds, timeout_s,
                           force=force)
    with stdout_for_json(as_json), progress(not as_json) as step:
        done: list[int] = []

        def on_rows(rows: list[SweepRow], total: int) -> None:
            done.extend(row.index for row in rows)
            step(f"{len(done)} of {total} rows done; last: {rows[-1].source} {rows[-1].verdict}")

        step(f"starting the {engine} engine")
        result = sweep(sources, out_dir, options, on_rows)
    if as_json:
        print_json(result.to_json())
        return result.exit_code
    show(sweep_table(result.rows))
    for note in result.notes:
        say(f"[dim]note:[/] {escape(note)}")
    style = "bold green" if result.exit_code == 0 else "bold red"
    verdict(f"[{style}]{result.passed} of {len(result.rows)} rows passed[/] in {result.seconds:.1f} s; "
            f"wrote {result.out_dir / 'sweep.jsonl'} and {result.out_dir / 'sweep.md'}")
    return result.exit_code
