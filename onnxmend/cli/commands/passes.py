"""``onnxmend passes``: the pass catalogue, where each pass lives, and the presets."""

from __future__ import annotations

import click
from rich.markup import escape

from onnxmend.cli.render import console, print_json, show
from onnxmend.core.table import table
from onnxmend.passes.infra.catalogue import all_passes, family_of
from onnxmend.passes.infra.presets import PRESETS


def module_path(name: str) -> str:
    """The repository path of a pass's module (``passes/padding/fold_pad.py``)."""
    return f"passes/{family_of(name)}/{name.replace('-', '_')}.py"


@click.command("passes")
@click.option("--json", "as_json", is_flag=True, help="Print the catalogue as JSON.")
def command(as_json: bool) -> None:
    """List every pass (name, family, module, what it fixes, preconditions) and the presets."""
    catalogue = all_passes()
    if as_json:
        print_json({
            "passes": [{"name": n, "family": family_of(n), "module": module_path(n),
                        "test": f"tests/{module_path(n).rsplit('/', 1)[0]}/test_{n.replace('-', '_')}.py",
                        "fixes": c.fixes, "preconditions": c.preconditions} for n, c in catalogue.items()],
            "presets": {k: list(v) for k, v in PRESETS.items()},
        })
        return
    shown = table("passes", ["name", "module!", "fixes", "preconditions", "presets"])
    for name, cls in catalogue.items():
        presets = ", ".join(p for p, names in PRESETS.items() if name in names) or "-"
        shown.add(name, module_path(name), cls.fixes, cls.preconditions, presets)
    show(shown)
    for preset, names in PRESETS.items():
        console.print(f"[bold]{preset}[/]: {escape(' → '.join(names) or '(no passes)')}", highlight=False)
