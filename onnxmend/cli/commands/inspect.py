"""``onnxmend inspect MODEL.onnx``: op histogram, interface, and what onnxmend would fix."""

from __future__ import annotations

import collections

import click
from rich.markup import escape
from rich.table import Table

from onnxmend.cli.render import console, print_json, stdout_for_json
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
    console.print(f"[bold]{model}[/]: opset {result.opset}, {result.nodes} nodes, {result.size_bytes / 1e6:.2f} MB")
    for io in result.inputs + result.outputs:
        kind = "input " if io in result.inputs else "output"
        console.print(f"  {kind} {io['name']}: {io['dtype']} {io['shape']}")
    if result.dynamic_dims:
        console.print(f"  dynamic dims: {', '.join(result.dynamic_dims)}")
    ops = Table(title="ops", title_justify="left")
    ops.add_column("op")
    ops.add_column("count", justify="right")
    for op, count in list(result.ops.items())[:top]:
        ops.add_row(op, str(count))
    console.print(ops)
    findings = Table(title="findings", title_justify="left")
    findings.add_column("count", justify="right")
    findings.add_column("finding")
    for f in result.findings:
        findings.add_row(str(f.count), f.message)
    if result.epsilons:
        eps = sorted({e["epsilon"] for e in result.epsilons})
        findings.add_row(str(len(result.epsilons)), f"norms (fused or decomposed); epsilons {', '.join(f'{e:g}' for e in eps)}")
    console.print(findings)
    if result.candidates:
        console.print(_candidates_table(result))
    flagged = collections.Counter(e["note"] for e in result.epsilons if e["differs"])
    for note, count in flagged.items():
        console.print(f"[yellow]epsilon:[/] {count} norm(s): {note}", soft_wrap=True)


def _candidates_table(result: Inspection) -> Table:
    """Per pass of the preset: how many candidates its matcher finds here, and how many it declines."""
    catalogue = all_passes()
    table = Table(title=f"what `fix --preset {result.preset}` would change (each pass's own matcher)",
                  title_justify="left")
    for col, justify in (("pass", "left"), ("candidates", "right"), ("declined", "right"), ("fixes", "left")):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for c in result.candidates:
        fixes = c.not_run and f"[dim]not run: {escape(c.not_run)}[/]" or escape(catalogue[c.name].fixes)
        table.add_row(c.name, str(c.count), str(len(c.skipped)), fixes)
    return table
