"""``onnxmend validate MODEL.onnx --source SOURCE [--layers]``: parity of an ONNX file against its source
model, or against the original it ports, and with ``--layers`` the first source layer that diverges."""

from __future__ import annotations

from pathlib import Path

import click

from onnxmend.cli.layer_options import layer_options, print_layers
from onnxmend.cli.options import data_options, export_options, given, report_options, tolerance_options
from onnxmend.cli.render import print_data, print_json, print_validation, progress, stdout_for_json
from onnxmend.exporters.options import ExportOptions
from onnxmend.flows.layers import validate_layers
from onnxmend.flows.validate import validate
from onnxmend.runtime.data import DataOptions
from onnxmend.runtime.layers.blame import BlameOptions


@click.command("validate")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--source", required=True,
              help="The source model MODEL was exported from, or the original it ports (any SOURCE form).")
@export_options
@tolerance_options
@data_options
@click.option("--layers", is_flag=True, help="Compare every mapped source layer and name the first that diverges.")
@layer_options("With --layers: ")
@report_options("Log what each step does (which runner, which sizes).")
def command(model: str, source: str, export_opts: ExportOptions, atol: float, rtol: float, seed: int,
            provider: str, threads: int, data: DataOptions, layers: bool, out_dir: str | None, budget: float,
            strategy: str, force: bool, as_json: bool, verbose: bool) -> int:
    """Compare MODEL on onnxruntime with SOURCE in its own framework on seeded inputs.

    SOURCE may be the model MODEL was exported from or an original that MODEL ports (a torch port of a
    Keras model): inputs are matched by name, else by position, and layouts adapted. Exit code 0 on
    parity (with --layers: and every layer passes), 1 on a mismatch or a degenerate reference, 2 on bad
    input, 3 when the source runs at no input size tried, 4 on an internal error.
    """
    if layers and (given("load_inputs") or given("save_outputs")):
        raise click.UsageError("--layers compares the layers on seeded inputs; --load-inputs and --save-outputs "
                               "go with plain validate (run it without --layers for your data).")
    if not layers and any(given(name) for name in ("out_dir", "budget", "strategy")):
        raise click.UsageError("-o, --budget and --strategy set up --layers; add --layers or drop them.")
    report = None
    with stdout_for_json(as_json), progress(not as_json) as step:
        if layers:
            options = BlameOptions(seed, atol, rtol, int(budget * 2**20), strategy)  # type: ignore[arg-type]
            result, report = validate_layers(model, source, export_opts, options, Path(out_dir) if out_dir else None,
                                             provider=provider, threads=threads, force=force,  # type: ignore[arg-type]
                                             progress=step)
        else:
            result = validate(model, source, export_opts, seed=seed, atol=atol, rtol=rtol,  # type: ignore[arg-type]
                              provider=provider, threads=threads, progress=step, data=data, force=force)
    if as_json:
        print_json(result.to_json() if report is None else {**result.to_json(), "layers": report.to_json()})
    else:
        if report is not None:
            print_layers(report, f"per layer, {source} vs {model}", out_dir)
        print_validation(result, f"{model} vs {source} ({result.provider})")
        print_data(None, data.save if data.save is not None and result.runs else None)
    code = {"pass": 0, "unverified": 3}.get(result.verdict, 1)
    return 1 if code == 0 and report is not None and report.exit_code else code
