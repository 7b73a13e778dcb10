"""The interface table of ``convert`` and ``fix``: every change to the graph's inputs and outputs between
the source and the written model, and why it was made.

``convert`` compares the source's own interface (:attr:`Export.declared_inputs`, e.g. a Keras ``None``
batch and NHWC layout) with ``model.onnx``; a change already in ``raw.onnx`` is the exporter's doing, one
that appears only after the passes is the passes' (``io-layout`` for a layout). ``fix`` compares its input
file with its output file. Nothing changes silently: an empty table is printed as "unchanged".
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import onnx

from onnxmend.core.interface import read_interface
from onnxmend.core.interface_diff import TensorChange, describe, diff_specs, relative_perms
from onnxmend.core.specs import TensorSpec, output_specs_from_model, specs_from_model
from onnxmend.core.table import Table, table
from onnxmend.exporters import Export, ExportOptions


def _perms(model: onnx.ModelProto) -> dict[str, list[int]]:
    return {name: list(c["perm"]) for name, c in read_interface(model).items()}  # type: ignore[call-overload]


def _diff(before_in: Sequence[TensorSpec], before_out: Sequence[TensorSpec], model: onnx.ModelProto,
          perms: dict[str, list[int]]) -> list[TensorChange]:
    return (diff_specs("input", before_in, specs_from_model(model), perms)
            + diff_specs("output", before_out, output_specs_from_model(model), perms))


def convert_interface(exported: Export, written: onnx.ModelProto, options: ExportOptions,
                      layout_choice: str) -> list[TensorChange]:
    """Source → ``model.onnx``, each change with its reason."""
    declared_in = exported.declared_inputs or exported.inputs
    declared_out = exported.declared_outputs or output_specs_from_model(exported.model)
    by_exporter = {(c.kind, c.tensor): c for c in _diff(declared_in, declared_out, exported.model, {})}
    changes = _diff(declared_in, declared_out, written, _perms(written))
    return [replace(c, why=_convert_why(c, by_exporter.get((c.kind, c.tensor)), exported, options, layout_choice))
            for c in changes]


def fix_interface(before: onnx.ModelProto, after: onnx.ModelProto, layout_choice: str) -> list[TensorChange]:
    """``fix``'s input file → its output file, each change with its reason."""
    perms = relative_perms(_perms(before), _perms(after))
    was = {name: str(c.get("was", "other")) for name, c in read_interface(after).items() if name in perms}
    labelled = [[replace(s, layout=was[s.name]) if s.name in was else s for s in specs]  # type: ignore[arg-type]
                for specs in (specs_from_model(before), output_specs_from_model(before))]
    changes = _diff(labelled[0], labelled[1], after, perms)
    return [replace(c, why="; ".join(_pass_why(a, c, layout_choice) for a in c.aspects)) for c in changes]


def _convert_why(change: TensorChange, exporter: TensorChange | None, exported: Export,
                 options: ExportOptions, layout_choice: str) -> str:
    reasons = []
    for aspect in change.aspects:
        if exporter is not None and aspect in exporter.aspects:
            reasons.append(_exporter_why(aspect, change, exported, options))
        else:
            reasons.append(_pass_why(aspect, change, layout_choice))
    return "; ".join(reasons)


def _exporter_why(aspect: str, change: TensorChange, exported: Export, options: ExportOptions) -> str:
    old, new = change.before, change.after
    if aspect == "name" and old and new:
        if exported.framework in ("keras", "tensorflow"):
            return (f"Keras numbers auto-named inputs per process; {new.name} is stable "
                    f"(--keep-interface keeps {old.name})")
        return f"{exported.exporter} names it {new.name}"
    if aspect == "static":
        dims = [i for i, d in enumerate(old.shape if old else ()) if not isinstance(d, int)]
        if options.dynamic_batch:
            return f"{exported.exporter} made dynamic dims static (the model's code fixes them)"
        if dims == [0]:
            return "exported with batch 1 (--dynamic-batch or --keep-interface keeps it dynamic)"
        return f"exported with dims {dims} at fixed sizes (--keep-interface keeps them dynamic)"
    if aspect == "dynamic":
        return "--dynamic-batch made the batch dynamic" if options.dynamic_batch else f"{exported.exporter} left it dynamic"
    if aspect == "shape":
        return "--input gave this size" if options.inputs else f"{exported.exporter} gives it this shape"
    if aspect in ("added", "removed"):
        return f"{exported.exporter} {aspect} it"
    return f"{exported.exporter} gives it as {new.dtype if new else '-'}"


def _pass_why(aspect: str, change: TensorChange, layout_choice: str) -> str:
    if aspect == "layout":
        old = change.before.layout if change.before else "?"
        return (f"io-layout: {old} → {change.after.layout if change.after else '?'} (--layout {layout_choice}; "
                f"--layout keep or --keep-interface keeps {old})")
    return f"a pass changed its {aspect if aspect not in ('static', 'dynamic') else 'dims'} (see the passes table)"


def interface_table(changes: Sequence[TensorChange]) -> Table:
    """tensor, before, after, why: one row per changed input or output."""
    t = table("interface (source → written model)", ["tensor", "before", "after", "why"],
              empty="unchanged: every input and output is as the source declares it")
    for c in changes:
        t.add(f"{c.kind} {c.tensor}", describe(c.before), describe(c.after), c.why)
    return t
