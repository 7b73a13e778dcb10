"""The MindSpore exporter's child side (runs in the MindSpore worker): ``nn.Cell`` → ``mindspore.export``.

The Cell (from a factory, seeded with ``mindspore.set_seed``, or from the zoo) is put in inference mode
(``set_train(False)``: Dropout is the identity, BatchNorm uses its moving statistics) and exported with
``mindspore.export(cell, *examples, file_format="ONNX")`` into a temporary folder. That export writes
opset 11 and static shapes only, whatever ``--opset`` says; ``--dynamic-batch`` is refused. Inputs come
from ``--input``, the Cell's ``example_inputs`` or the zoo entry, named after ``construct``'s parameters
as the export names them.

The raw export's explicit Conv2d pads are then put in ONNX's order (:mod:`.pads`), and the note says
which Convs changed and what the output shapes are before and after, beside MindSpore's own.
"""

from __future__ import annotations

import inspect
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from onnxmend.core.deps import require
from onnxmend.core.errors import BadSourceError, NeedsInputShapes, OnnxmendError, first_line
from onnxmend.core.specs import TensorSpec
from onnxmend.exporters.factories import load_factory
from onnxmend.exporters.mindspore.pads import Padding, correct_pads, output_shapes
from onnxmend.exporters.options import ExportOptions
from onnxmend.exporters.remote import Recipe, RemoteExport, keep, rename_tensors

MINDSPORE_OPSET = 11


def build_cell(source: str, seed: int = 0) -> Any:
    ms = require("mindspore")
    ms.set_seed(seed)
    factory = load_factory(source)
    try:
        cell = factory()
    except Exception as exc:
        raise BadSourceError(f"The factory in {source!r} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(cell, ms.nn.Cell):
        raise BadSourceError(f"The factory in {source!r} returned a {type(cell).__name__}, not a mindspore.nn.Cell.")
    cell.set_train(False)
    return cell


def build_zoo(name: str, seed: int = 0) -> Any:
    from onnxmend.models import build

    cell = build(name, seed)
    cell.set_train(False)
    return cell


def export_factory(source: str, options: ExportOptions) -> RemoteExport:
    recipe = Recipe(f"{__name__}:build_cell", {"source": source, "seed": options.seed})
    cell = recipe.load()
    return _export_cell(cell, _cell_inputs(cell, options), source, options, recipe)


def export_zoo(source: str, name: str, options: ExportOptions) -> RemoteExport:
    from onnxmend.models import zoo_entry

    recipe = Recipe(f"{__name__}:build_zoo", {"name": name, "seed": options.seed})
    cell = recipe.load()
    return _export_cell(cell, list(zoo_entry(name).inputs), source, options, recipe)


def _export_cell(cell: Any, specs: list[TensorSpec], source: str, options: ExportOptions,
                 recipe: Recipe) -> RemoteExport:
    ms = require("mindspore")
    if options.dynamic_batch:
        raise OnnxmendError("mindspore.export writes static shapes only; drop --dynamic-batch for a MindSpore source.")
    rng = np.random.default_rng(options.seed)
    examples = [ms.Tensor(rng.standard_normal(s.concrete_shape()).astype(s.dtype)) for s in specs]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="onnxmend-mindspore-") as folder:
        try:
            ms.export(cell, *examples, file_name=str(Path(folder) / "model"), file_format="ONNX")
        except Exception as exc:  # MindSpore's graph compiler raises RuntimeError, OSError, TypeError, ...
            raise OnnxmendError(f"mindspore.export could not export {source} ({type(exc).__name__}: {first_line(exc, 200)}).") from exc
        model = onnx.load(str(Path(folder) / "model.onnx"))
    seconds = time.perf_counter() - start
    notes = [_static_note(specs)]
    notes += _correct(model, cell, examples)
    # The export names inputs after construct's parameters (SequentialCell: input_data); use the specs'.
    rename_tensors(model, {vi.name: s.name for vi, s in zip(model.graph.input, specs)})
    inputs = tuple(specs)
    return RemoteExport(model.SerializeToString(), inputs, tuple(o.name for o in model.graph.output),
                        f"mindspore.export {ms.__version__} (ONNX opset {MINDSPORE_OPSET})", seconds,
                        keep(cell, "mindspore"), recipe, tuple(notes))


def _static_note(specs: list[TensorSpec]) -> str:
    shapes = ", ".join(f"{s.name} {'x'.join(map(str, s.shape))}" for s in specs)
    return f"mindspore.export writes opset {MINDSPORE_OPSET} with static shapes only: {shapes}"


def _correct(model: onnx.ModelProto, cell: Any, examples: list[Any]) -> list[str]:
    """Put explicit Conv2d pads in ONNX's order; the note gives the output shapes before and after."""
    raw_shapes = output_shapes(model)
    corrections = correct_pads(model, explicit_pads(cell))
    if not corrections:
        return []
    fixed_shapes = output_shapes(model)
    reference = [tuple(o.shape) for o in _flatten(cell(*examples))]
    changed = "; ".join(f"{c.weight} {list(c.written)} → {list(c.corrected)}" for c in corrections)
    shapes = "; ".join(
        f"output {name}: {_dims(raw_shapes[name])} as exported, {_dims(fixed_shapes[name])} corrected"
        + (f" (MindSpore: {_dims(reference[i])})" if i < len(reference) else "")
        for i, name in enumerate(raw_shapes)
    )
    return [f"mindspore.export wrote the pads of {len(corrections)} Conv2d(pad_mode='pad') in MindSpore's "
            f"(top, bottom, left, right) order; rewritten in ONNX's (top, left, bottom, right): {changed}; {shapes}"]


def explicit_pads(cell: Any) -> dict[str, Padding]:
    """Weight parameter name -> (top, bottom, left, right) of every ``nn.Conv2d(pad_mode="pad")``."""
    ms = require("mindspore")
    found = {}
    for _, sub in cell.cells_and_names():
        if isinstance(sub, ms.nn.Conv2d) and str(sub.pad_mode).lower() == "pad":
            padding = sub.padding
            padding = (padding,) * 4 if isinstance(padding, int) else tuple(padding)
            if len(padding) == 4:
                found[sub.weight.name] = padding
    return found


def _cell_inputs(cell: Any, options: ExportOptions) -> list[TensorSpec]:
    if options.inputs:
        if any(d is None for a in options.inputs for d in a.shape):
            raise OnnxmendError("mindspore.export writes static shapes only; give concrete sizes in --input.")
        return [TensorSpec(a.name, a.shape, a.dtype, _layout(a.shape)) for a in options.inputs]
    examples = getattr(cell, "example_inputs", None)
    examples = examples() if callable(examples) else examples
    if examples is None:
        raise NeedsInputShapes("The Cell has no example_inputs; give its input shapes with --input NAME:1x3x224x224.")
    arrays = [np.asarray(e.asnumpy() if hasattr(e, "asnumpy") else e)
              for e in (examples if isinstance(examples, (list, tuple)) else [examples])]
    params = [p.name for p in inspect.signature(cell.construct).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    names = params[: len(arrays)] if len(params) >= len(arrays) else [f"input_{i}" for i in range(len(arrays))]
    return [TensorSpec(n, a.shape, a.dtype.name, _layout(a.shape)) for n, a in zip(names, arrays)]


def _layout(shape: tuple) -> str:
    return "NCHW" if len(shape) == 4 else ("NCL" if len(shape) == 3 else "other")


def _dims(shape: tuple) -> str:
    return "x".join(map(str, shape))


def _flatten(result: Any) -> list[Any]:
    if isinstance(result, (list, tuple)):
        return [t for v in result for t in _flatten(v)]
    return [result] if hasattr(result, "shape") else []
