"""``onnxmend inspect MODEL.onnx``: op histogram, interface, and what onnxmend would fix."""

from __future__ import annotations

import collections

import click
from rich.table import Table

from onnxmend.commands.render import console, print_json
from onnxmend.core.fileio import load_model
from onnxmend.runtime.inspect import guess_framework, inspect_model


@click.command("inspect")
@click.argument("model", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the inspection as JSON.")
@click.option("--top", type=click.IntRange(min=1), default=15, show_default=True, help="Op types to list.")
@click.option("--framework", type=click.Choice(["auto", "torch", "keras", "onnx"]), default="auto", show_default=True,
              help="Source framework whose epsilon defaults the norms are checked against (auto: from the producer).")
def command(model: str, as_json: bool, top: int, framework: str) -> None:
    """Show MODEL's op histogram, opset, size, dynamic dims and findings."""
    onnx_model = load_model(model)
    result = inspect_model(onnx_model, model, guess_framework(onnx_model) if framework == "auto" else framework)
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
    flagged = collections.Counter(e["note"] for e in result.epsilons if e["differs"])
    for note, count in flagged.items():
        console.print(f"[yellow]epsilon:[/] {count} norm(s): {note}", soft_wrap=True)
