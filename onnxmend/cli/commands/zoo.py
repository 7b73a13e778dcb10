"""``onnxmend zoo``: the built-in reference models, usable as ``zoo:NAME``."""

from __future__ import annotations

import click
from rich.markup import escape
from rich.table import Table

from onnxmend.cli.render import console, print_json


@click.command("zoo")
@click.option("--json", "as_json", is_flag=True, help="Print the zoo as JSON.")
def command(as_json: bool) -> None:
    """List the reference zoo: small models that reproduce each seed case."""
    from onnxmend.models import ZOO

    if as_json:
        print_json([{"name": e.name, "framework": e.framework, "description": e.description} for e in ZOO.values()])
        return
    table = Table(title="zoo", title_justify="left")
    for col in ("name", "framework", "twin of", "reproduces"):
        table.add_column(col)
    for entry in ZOO.values():
        twin = f"zoo:{entry.twin_of}" if entry.twin_of else "-"
        table.add_row(f"zoo:{entry.name}", entry.framework, twin, escape(entry.description))
    console.print(table)
