"""The Paddle exporter's child side (runs in the Paddle worker): Layer or saved program → paddle2onnx.

A Layer (from a factory or the zoo) is put in eval mode, saved with ``paddle.jit.save`` (Paddle 3 writes
the PIR ``.json`` program; ``FLAGS_enable_pir_api=0`` the old ``.pdmodel``) into a temporary folder, and
that program goes through ``paddle2onnx.export`` like a saved inference model does. Its inputs come from
``--input`` or the Layer's ``example_inputs`` (arrays or tensors), named after ``forward``'s parameters;
the batch axis is static unless ``--dynamic-batch``.

paddle2onnx is called for the bytes (no ``save_file``), so neither of its Python-side optimizers runs: its
Polygraphy one sets ``POLYGRAPHY_AUTOINSTALL_DEPS=1`` and pip-installs packages at run time, and the
worker's environment sets it to 0 besides. paddle2onnx's own C++ graph clean-up still runs. The reference
is the Layer itself in dygraph (eval, ``no_grad``); for a saved inference model it is a Paddle Inference
predictor (:class:`InferenceModel`), the runtime that model is deployed with.
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
from onnxmend.core.specs import TensorSpec, specs_from_model
from onnxmend.exporters.factories import load_factory
from onnxmend.exporters.options import ExportOptions
from onnxmend.exporters.remote import Recipe, RemoteExport, keep


class InferenceModel:
    """A saved Paddle inference model on a Paddle Inference predictor (CPU): arrays in, arrays out."""

    def __init__(self, program: str, params: str) -> None:
        paddle = require("paddle")
        config = paddle.inference.Config(program, params)
        config.disable_gpu()
        self.predictor = paddle.inference.create_predictor(config)

    def __call__(self, *arrays: np.ndarray) -> list[np.ndarray]:
        for name, array in zip(self.predictor.get_input_names(), arrays):
            self.predictor.get_input_handle(name).copy_from_cpu(np.ascontiguousarray(array))
        self.predictor.run()
        return [self.predictor.get_output_handle(n).copy_to_cpu() for n in self.predictor.get_output_names()]


def build_layer(source: str, seed: int = 0) -> Any:
    paddle = require("paddle")
    paddle.seed(seed)
    factory = load_factory(source)
    try:
        layer = factory()
    except Exception as exc:
        raise BadSourceError(f"The factory in {source!r} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(layer, paddle.nn.Layer):
        raise BadSourceError(f"The factory in {source!r} returned a {type(layer).__name__}, not a paddle.nn.Layer.")
    layer.eval()
    return layer


def build_zoo(name: str, seed: int = 0) -> Any:
    from onnxmend.models import build

    layer = build(name, seed)
    layer.eval()
    return layer


def export_factory(source: str, options: ExportOptions) -> RemoteExport:
    recipe = Recipe(f"{__name__}:build_layer", {"source": source, "seed": options.seed})
    layer = recipe.load()
    return _export_layer(layer, _layer_inputs(layer, options), source, options, recipe)


def export_zoo(source: str, name: str, options: ExportOptions) -> RemoteExport:
    from onnxmend.models import zoo_entry

    recipe = Recipe(f"{__name__}:build_zoo", {"name": name, "seed": options.seed})
    specs = [_batch(s, options.dynamic_batch) for s in zoo_entry(name).inputs]
    return _export_layer(recipe.load(), specs, source, options, recipe)


def export_program(source: str, program: str, params: str, options: ExportOptions) -> RemoteExport:
    start = time.perf_counter()
    model = paddle_to_onnx(program, params, options.opset, source)
    seconds = time.perf_counter() - start
    inputs = [_batch(s, options.dynamic_batch) for s in specs_from_model(model)]
    _set_batch(model, inputs)
    recipe = Recipe(f"{__name__}:InferenceModel", {"program": program, "params": params})
    try:
        key = keep(recipe.load(), "paddle")
    except Exception as exc:  # Paddle Inference raises its own errors for programs it cannot load
        raise BadSourceError(f"Paddle Inference cannot load {source} ({first_line(exc, 200)}).") from exc
    return _reply(model, inputs, seconds, key, recipe, ["reference: Paddle Inference predictor (CPU)"])


def _export_layer(layer: Any, specs: list[TensorSpec], source: str, options: ExportOptions,
                  recipe: Recipe) -> RemoteExport:
    paddle = require("paddle")
    input_spec = [paddle.static.InputSpec([None if not isinstance(d, int) else d for d in s.shape], s.dtype, s.name)
                  for s in specs]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="onnxmend-paddle-") as folder:
        prefix = Path(folder) / "model"
        try:
            paddle.jit.save(layer, str(prefix), input_spec=input_spec)
        except Exception as exc:  # dy2static raises anything from TypeError to its own errors
            raise OnnxmendError(f"paddle.jit.save could not trace {source} ({type(exc).__name__}: {first_line(exc, 200)}).") from exc
        program = next(p for p in (prefix.with_suffix(".json"), prefix.with_suffix(".pdmodel")) if p.is_file())
        model = paddle_to_onnx(str(program), str(prefix.with_suffix(".pdiparams")), options.opset, source)
    _set_batch(model, specs)
    notes = [f"traced with paddle.jit.save ({program.suffix} program); reference: the Layer in dygraph, eval mode"]
    return _reply(model, specs, time.perf_counter() - start, keep(layer, "paddle"), recipe, notes)


def paddle_to_onnx(program: str, params: str, opset: int, source: str) -> onnx.ModelProto:
    """paddle2onnx on a saved program, returning the model; no Python-side optimizer runs."""
    p2o = require("paddle2onnx")
    require("packaging")  # paddle2onnx imports it without declaring it
    kwargs: dict[str, Any] = {"opset_version": opset, "enable_onnx_checker": True}
    if "optimize_tool" in inspect.signature(p2o.export).parameters:
        kwargs["optimize_tool"] = "None"
    try:
        data = p2o.export(program, params, **kwargs)
    except Exception as exc:  # paddle2onnx logs the real error and then fails on its own missing result
        raise OnnxmendError(
            f"paddle2onnx could not convert {source} ({type(exc).__name__}: {first_line(exc, 200)}); its log above says why."
        ) from exc
    return onnx.load_from_string(data)


def _layer_inputs(layer: Any, options: ExportOptions) -> list[TensorSpec]:
    """Specs from ``--input``, else from the Layer's ``example_inputs``; names from ``forward``."""
    if options.inputs:
        if any(d is None for a in options.inputs for d in a.shape):
            raise OnnxmendError("Give concrete sizes in --input for a Paddle Layer; use --dynamic-batch for a dynamic batch.")
        return [_batch(TensorSpec(a.name, a.shape, a.dtype, _layout(a.shape)), options.dynamic_batch) for a in options.inputs]
    examples = getattr(layer, "example_inputs", None)
    examples = examples() if callable(examples) else examples
    if examples is None:
        raise NeedsInputShapes("The Layer has no example_inputs; give its input shapes with --input NAME:1x3x224x224.")
    arrays = [np.asarray(e.numpy() if hasattr(e, "numpy") else e) for e in (examples if isinstance(examples, (list, tuple)) else [examples])]
    params = [p.name for p in inspect.signature(layer.forward).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    names = params[: len(arrays)] if len(params) >= len(arrays) else [f"input_{i}" for i in range(len(arrays))]
    return [_batch(TensorSpec(n, a.shape, a.dtype.name, _layout(a.shape)), options.dynamic_batch) for n, a in zip(names, arrays)]


def _layout(shape: tuple) -> str:
    return "NCHW" if len(shape) == 4 else ("NCL" if len(shape) == 3 else "other")


def _batch(spec: TensorSpec, dynamic: bool) -> TensorSpec:
    """The spec with its batch axis ``"batch"`` (``--dynamic-batch``) or 1 where it was dynamic."""
    if not spec.shape:
        return spec
    first = "batch" if dynamic else (spec.shape[0] if isinstance(spec.shape[0], int) else 1)
    layout = spec.layout if spec.layout != "other" else _layout(spec.shape)
    return TensorSpec(spec.name, (first, *spec.shape[1:]), spec.dtype, layout, spec.value_range)  # type: ignore[arg-type]


def _set_batch(model: onnx.ModelProto, specs: list[TensorSpec]) -> None:
    """Write the specs' batch axis into the graph's inputs (paddle2onnx names a dynamic one ``DynamicDimension.0``)."""
    by_name = {s.name: s for s in specs}
    for vi in model.graph.input:
        dims = vi.type.tensor_type.shape.dim
        spec = by_name.get(vi.name)
        if spec is None or not dims or not spec.shape:
            continue
        if isinstance(spec.shape[0], int):
            dims[0].dim_value = spec.shape[0]
        else:
            dims[0].dim_param = "batch"


def _reply(model: onnx.ModelProto, inputs: list[TensorSpec], seconds: float, key: str, recipe: Recipe,
           notes: list[str]) -> RemoteExport:
    p2o = require("paddle2onnx")
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    notes = notes + ["paddle2onnx ran without its Python-side optimizers (no Polygraphy, no run-time pip installs)"]
    return RemoteExport(model.SerializeToString(), tuple(inputs), tuple(o.name for o in model.graph.output),
                        f"paddle2onnx {p2o.__version__} (opset {opset})", seconds, key, recipe, tuple(notes))
