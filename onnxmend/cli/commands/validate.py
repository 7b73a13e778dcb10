"""``onnxmend validate MODEL.onnx --source SOURCE``: parity of an ONNX file against its source model."""

from __future__ import annotations

import click

from onnxmend.cli.options import data_options, export_options, force_option, report_options, tolerance_options
from onnxmend.cli.render import print_data, print_json, print_validation, progress, stdout_for_json
from onnxmend.exporters.options import ExportOptions
from onnxmend.flows.validate import validate
from onnxmend.runtime.data import DataOptions


@click.command("validate")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--source", required=True, help="The source model MODEL was exported from (any SOURCE form).")
@export_options
@tolerance_options
@data_options
@force_option
@report_options("Log what each step does (which runner, which sizes).")
def command(model: str, source: str, export_opts: ExportOptions, atol: float, rtol: float, seed: int,
            provider: str, threads: int, data: DataOptions, force: bool, as_json: bool, verbose: bool) -> int:
    """Compare MODEL on onnxruntime with SOURCE in its own framework on seeded inputs.

    Exit code 0 on parity, 1 on mismatch or a degenerate reference, 2 on bad input, 3 when the source runs
    at no input size tried, 4 on an internal error.
    """
    with stdout_for_json(as_json), progress(not as_json) as step:
        result = validate(model, source, export_opts, seed=seed, atol=atol, rtol=rtol,  # type: ignore[arg-type]
                          provider=provider, threads=threads, progress=step,
                          data=data, force=force)
    if as_json:
        print_json(result.to_json())
    else:
        print_validation(result, f"{model} vs {source} ({result.provider})")
        print_data(None, data.save if data.save is not None and result.runs else None)
    return {"pass": 0, "unverified": 3}.get(result.verdict, 1)
