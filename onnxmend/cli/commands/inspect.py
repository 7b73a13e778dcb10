"""``onnxmend inspect MODEL.onnx``: op histogram, interface, and what onnxmend would fix."""

from __future__ import annotations

import collections

import click
from rich.markup import escape

from onnxmend.cli.render import console, print_json, show, stdout_for_json
from onnxmend.core.table import Cell, Table, table
from onnxmend.flows.inspect import inspect
from onnxmend.passes.infra.catalogue import all_passes
from onnxmend.runtime.inspect import Inspection


@click.command("inspect")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the inspection as JSON.")
@click.option("--top", type=click.IntRange(min=1), default=15, show_default=True, help="Op types to list.")
@click.option("--framework", type=click.Choice(["auto", "torch", "keras", "onnx"]), default="auto", show_default=True,
              help="Source framework whose epsilon defaults the norms are checked against (auto: from the producer).")
@click.option("--preset", type=click.Choice(["fix", "portable", "none"]), default="fix", show_default=True,
              help="List what each pass of this preset would change (its own matcher, as `fix` runs it).")
def command(model: str, as_json: bool, top: int, framework: str, preset: str) -> None:
    """Show MODEL's op histogram, opset, size, dynamic dims, findings and pass candidates."""
    with stdout_for_json(as_json):
        result = inspect(model, framework, preset)
    if as_json:
        print_json(result.to_json())
        return
    console.print(f"[bold]{escape(model)}[/]: opset {result.opset}, {result.nodes} nodes, {result.size_bytes / 1e6:.2f} MB")
    for io in result.inputs + result.outputs:
        kind = "input " if io in result.inputs else "output"
        console.print(f"  {kind} {escape(io['name'])}: {io['dtype']} {io['shape']}", highlight=False)
    if result.dynamic_dims:
        console.print(f"  dynamic dims: {escape(', '.join(result.dynamic_dims))}", highlight=False)
    ops = table("ops", ["op", "count>"])
    for op, count in list(result.ops.items())[:top]:
        ops.add(op, count)
    show(ops)
    findings = table("findings", ["finding", "count>"])
    for f in result.findings:
        findings.add(f.message, f.count)
    if result.epsilons:
        eps = sorted({e["epsilon"] for e in result.epsilons})
        findings.add(f"norms (fused or decomposed); epsilons {', '.join(f'{e:g}' for e in eps)}", len(result.epsilons))
    show(findings)
    if result.candidates:
        show(_candidates_table(result))
    flagged = collections.Counter(e["note"] for e in result.epsilons if e["differs"])
    for note, count in flagged.items():
        console.print(f"[yellow]epsilon:[/] {count} norm(s): {escape(note)}", highlight=False)


def _candidates_table(result: Inspection) -> Table:
    """Per pass of the preset: how many candidates its matcher finds here, and how many it declines."""
    catalogue = all_passes()
    shown = table(f"what `fix --preset {result.preset}` would change (each pass's own matcher)",
                  ["pass", "candidates>", "declined>", "fixes"])
    for c in result.candidates:
        fixes = Cell(f"not run: {c.not_run}", "dim") if c.not_run else Cell(catalogue[c.name].fixes)
        shown.add(c.name, c.count, len(c.skipped), fixes)
    return shown
