"""``onnxmend zoo``: the built-in reference models, usable as ``zoo:NAME``."""

from __future__ import annotations

import click

from onnxmend.cli.render import print_json, show
from onnxmend.core.table import table


@click.command("zoo")
@click.option("--json", "as_json", is_flag=True, help="Print the zoo as JSON.")
def command(as_json: bool) -> None:
    """List the reference zoo: small models that reproduce what users hit, usable as SOURCE (zoo:NAME)."""
    from onnxmend.models import ZOO

    if as_json:
        print_json([{"name": e.name, "framework": e.framework, "description": e.description} for e in ZOO.values()])
        return
    shown = table("zoo", ["name", "framework", "twin of!", "reproduces"])
    for entry in ZOO.values():
        shown.add(f"zoo:{entry.name}", entry.framework, f"zoo:{entry.twin_of}" if entry.twin_of else "-",
                  entry.description)
    show(shown)
