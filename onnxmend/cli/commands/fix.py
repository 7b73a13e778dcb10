"""``onnxmend fix IN.onnx -o OUT.onnx``: run a pass pipeline on an existing ONNX file."""

from __future__ import annotations

import click
from rich.markup import escape

from onnxmend.cli.options import force_option, interface_options, pass_options
from onnxmend.cli.render import console, print_interface, print_json, progress, render, stdout_for_json
from onnxmend.exporters.options import parse_input_arg
from onnxmend.flows.fix import fix
from onnxmend.flows.tables import ops_table, passes_table


@click.command("fix")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("-o", "--out", "output", type=click.Path(dir_okay=False), required=True, help="Where to write the fixed model.")
@pass_options
@click.option("--layout", type=click.Choice(["auto", "nchw", "keep"]), default="auto", show_default=True,
              help="auto = the file's own interface, Transposes allowed around fused norms; nchw = channels-first "
                   "I/O and no Transpose inside; keep = the file's interface, at most one Transpose per NHWC "
                   "input/output (recorded in the model's metadata).")
@click.option("--input", "inputs", multiple=True, metavar="NAME:1x3x224x224",
              help="A size for the gate to check the rewrites at (repeatable; ? keeps a dim dynamic); it also tries "
                   "other sizes the graph runs at.")
@interface_options
@click.option("--seed", type=int, default=0, show_default=True, help="Seed for the gate's synthesised inputs.")
@force_option
@click.option("--json", "as_json", is_flag=True, help="Print the pass report as JSON.")
@click.option("-v", "--verbose", is_flag=True, help="Show every skipped candidate and why.")
def command(model: str, output: str, preset: str, pass_names: str | None, verify: bool, layout: str,
            inputs: tuple[str, ...], keep_interface: bool, max_growth: float, seed: int, force: bool, as_json: bool,
            verbose: bool) -> int:
    """Rewrite MODEL with the fix pipeline (or --passes) and write OUT; MODEL is never modified."""
    with stdout_for_json(as_json), progress(not as_json) as say:
        result = fix(model, output, preset, pass_names, verify, layout, seed,  # type: ignore[arg-type]
                     tuple(parse_input_arg(t) for t in inputs), progress=say, force=force,
                     keep_interface=keep_interface, max_growth=max_growth)
    if as_json:
        print_json({"output": str(result.output), **result.pipeline.to_json(),
                    "interface": [c.to_json() for c in result.interface], "keep_interface": result.keep_interface})
    else:
        console.print(render(passes_table(result.pipeline, verbose)))
        console.print(render(ops_table(result.before.ops, result.after.ops)))
        print_interface(result.interface, result.pipeline, "input file → written model")
        if result.pipeline.unverified_reason:
            console.print(f"[bold yellow]NOT VERIFIED[/] {escape(result.pipeline.unverified_reason)}", highlight=False)
        console.print(f"wrote {result.output}")
    return result.exit_code
