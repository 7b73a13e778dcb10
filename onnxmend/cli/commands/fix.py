"""``onnxmend fix IN.onnx -o OUT.onnx``: run a pass pipeline on an existing ONNX file."""

from __future__ import annotations

import click
from rich.markup import escape

from onnxmend.cli.options import (
    data_options,
    force_option,
    given,
    interface_options,
    layout_option,
    out_option,
    pass_options,
    reject_given_together,
    report_options,
    seed_option,
)
from onnxmend.cli.render import print_data, print_interface, print_json, progress, show, stdout_for_json, verdict
from onnxmend.exporters.options import parse_input_arg
from onnxmend.flows.fix import fix
from onnxmend.flows.tables import ops_table, passes_table
from onnxmend.runtime.data import DataOptions
from onnxmend.runtime.gate import DEFAULT_TIMEOUT_S


@click.command("fix")
@click.argument("model", type=click.Path(dir_okay=False))
@out_option("file", "Where to write the fixed model (never the input file).", dest="output", required=True)
@pass_options
@layout_option("the file's own interface")
@click.option("--input", "inputs", multiple=True, metavar="NAME:1x3x224x224",
              help="A size for the gate to check the rewrites at (repeatable; ? keeps a dim dynamic); it also tries "
                   "other sizes the graph runs at.")
@interface_options
@seed_option("Seed for the gate's synthesised inputs.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=DEFAULT_TIMEOUT_S, show_default=True,
              help="Seconds each onnxruntime run of the gate may take (in a worker process); a run past it is "
                   "stopped and its input size counted as one the graph cannot run.")
@data_options
@force_option
@report_options("Show every skipped candidate and why.")
def command(model: str, output: str, preset: str, pass_names: str | None, verify: bool, layout: str,
            inputs: tuple[str, ...], keep_interface: bool, max_growth: float, seed: int, timeout_s: float,
            data: DataOptions, force: bool, as_json: bool, verbose: bool) -> int:
    """Rewrite MODEL with the fix pipeline (or --passes) and write OUT; MODEL is never modified.

    Exit code 0 when every rewrite was gated, 1 when the written graph disagrees with MODEL, 2 on bad
    input, 3 when the rewrites could not be checked numerically, 4 on an internal error.
    """
    if not verify and (given("inputs") or given("seed") or given("timeout_s")):
        raise click.UsageError("--input, --seed and --timeout set up the gate, and --no-verify turns the gate off; "
                               "drop one of them.")
    reject_given_together("load_inputs", "inputs", "--load-inputs gives the gate its inputs, at the sizes of its arrays.")
    if not verify and given("load_inputs") and not given("save_outputs"):
        raise click.UsageError("--load-inputs gives the gate its inputs, and --no-verify turns the gate off; add "
                               "--save-outputs or drop one of them.")
    with stdout_for_json(as_json), progress(not as_json) as step:
        result = fix(model, output, preset, pass_names, verify, layout, seed,  # type: ignore[arg-type]
                     tuple(parse_input_arg(t) for t in inputs), progress=step, force=force, timeout_s=timeout_s,
                     keep_interface=keep_interface, max_growth=max_growth, data=data)
    if as_json:
        print_json({"output": str(result.output), **result.pipeline.to_json(),
                    "interface": [c.to_json() for c in result.interface], "keep_interface": result.keep_interface,
                    "inputs_used": result.inputs.to_json() if result.inputs else None,
                    "saved_outputs": str(result.saved_outputs) if result.saved_outputs else None})
    else:
        show(passes_table(result.pipeline, verbose))
        show(ops_table(result.before.ops, result.after.ops))
        print_interface(result.interface, result.pipeline, "input file → written model")
        if result.pipeline.unverified_reason:
            verdict(f"[bold yellow]NOT VERIFIED[/] {escape(result.pipeline.unverified_reason)}")
        print_data(result.inputs, result.saved_outputs, "gate inputs")
        verdict(f"wrote {result.output}")
    return result.exit_code
