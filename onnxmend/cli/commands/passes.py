"""``onnxmend passes``: the pass catalogue and the presets."""

from __future__ import annotations

import click
from rich.table import Table

from onnxmend.cli.render import console, print_json
from onnxmend.passes.infra.catalogue import all_passes
from onnxmend.passes.infra.presets import PRESETS


@click.command("passes")
@click.option("--json", "as_json", is_flag=True, help="Print the catalogue as JSON.")
def command(as_json: bool) -> None:
    """List every pass (name, what it fixes, preconditions) and the presets."""
    catalogue = all_passes()
    if as_json:
        print_json({
            "passes": [{"name": n, "fixes": c.fixes, "preconditions": c.preconditions} for n, c in catalogue.items()],
            "presets": {k: list(v) for k, v in PRESETS.items()},
        })
        return
    table = Table(title="passes", title_justify="left")
    for col in ("name", "fixes", "preconditions", "presets"):
        table.add_column(col)
    for name, cls in catalogue.items():
        presets = ", ".join(p for p, names in PRESETS.items() if name in names) or "-"
        table.add_row(name, cls.fixes, cls.preconditions, presets)
    console.print(table)
    for preset, names in PRESETS.items():
        console.print(f"[bold]{preset}[/]: {' → '.join(names) or '(no passes)'}")
