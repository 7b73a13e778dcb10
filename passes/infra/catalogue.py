"""The pass catalogue: every pass module under ``passes/<family>/``, found by walking the families.

A module that defines ``PASS`` is a pass, and its file is named after it (``fold_pad.py`` holds
``fold-pad``); every other module in a family is a helper. The catalogue lists passes family by family,
in :data:`FAMILIES` order, alphabetically inside a family; the order a pipeline runs them in is the
preset's (:mod:`onnxmend.passes.infra.presets`).
"""

from __future__ import annotations

import functools
import importlib
import pkgutil

from onnxmend.core.errors import OnnxmendError
from onnxmend.passes.infra.base import Pass
from onnxmend.passes.infra.presets import PRESETS

FAMILIES = ("cleanup", "padding", "layout", "folding", "norms", "activations")


@functools.cache
def all_passes() -> dict[str, type[Pass]]:
    """Every known pass class by its command-line name, family by family."""
    found: dict[str, type[Pass]] = {}
    for family in FAMILIES:
        package = importlib.import_module(f"onnxmend.passes.{family}")
        for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda i: i.name):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            cls = getattr(module, "PASS", None)
            if cls is not None:
                found[cls.name] = cls
    return found


def family_of(name: str) -> str:
    """The family (sub-package) a pass lives in."""
    return all_passes()[name].__module__.split(".")[-2]


def resolve(preset: str | None = None, names: str | list[str] | None = None) -> list[Pass]:
    """Pass instances for ``--passes a,b,c`` (any subset, in the order given) or a preset."""
    catalogue = all_passes()
    if names:
        wanted = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        wanted = [n for n in wanted if n]
        unknown = [n for n in wanted if n not in catalogue]
        if unknown:
            raise OnnxmendError(
                f"Unknown pass {', '.join(unknown)}; `onnxmend passes` lists the {len(catalogue)} known ones."
            )
        return [catalogue[n]() for n in wanted]
    preset = preset or "fix"
    if preset not in PRESETS:
        raise OnnxmendError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    return [catalogue[n]() for n in PRESETS[preset]]
