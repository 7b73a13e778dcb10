"""The TFLite exporter's child side (runs in the TFLite worker): ``.tflite`` bytes → ONNX with tf2onnx.

The I/O comes from the interpreter: names from the model's signature (:func:`~.interpreter.io_tensors`),
shapes from ``shape_signature`` (batch 1 unless ``--dynamic-batch``; ``--input`` may set them), NHWC for
4-D inputs. tf2onnx's graph tensors keep the TFLite tensor names, so its inputs and outputs are renamed to
those names. Integer inputs are synthesised over their whole range (int8 ``[-128, 127]``); integer
outputs get a tolerance of one quantization step (``Export.output_steps``), and a float output that a
``DEQUANTIZE`` produces gets one step of its input's scale.

tf2onnx exits successfully with unconvertible ops left in the graph; the parent's kernel check
(:mod:`onnxmend.exporters.kernels`) turns those into one sentence.
"""

from __future__ import annotations

import logging
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx

from onnxmend.core.deps import require
from onnxmend.core.errors import BadSourceError, OnnxmendError, first_line
from onnxmend.core.specs import TensorSpec
from onnxmend.exporters.options import ExportOptions
from onnxmend.exporters.remote import Recipe, RemoteExport, keep, rename_tensors
from onnxmend.exporters.tflite.interpreter import io_tensors, make_interpreter, runtime_name

log = logging.getLogger(__name__)
_INT_RANGES = {"int8": (-128.0, 128.0), "uint8": (0.0, 256.0), "int16": (-32768.0, 32768.0)}


def read_file(path: str) -> bytes:
    return Path(path).read_bytes()


def export_file(source: str, options: ExportOptions) -> RemoteExport:
    path = Path(source)
    if not path.is_file():
        raise BadSourceError(f"{path} does not exist.")
    recipe = Recipe(f"{__name__}:read_file", {"path": str(path.resolve())})
    return convert_tflite(path.read_bytes(), source, options, recipe)


def export_zoo(source: str, name: str, options: ExportOptions) -> RemoteExport:
    from onnxmend.models import zoo_entry

    recipe = Recipe("onnxmend.exporters.tflite.build:zoo_tflite", {"name": name, "seed": options.seed})
    return convert_tflite(recipe.load(), source, options, recipe, zoo_entry(name).value_ranges)


def convert_tflite(data: bytes, source: str, options: ExportOptions, recipe: Recipe,
                   value_ranges: dict[str, tuple[float, float]] | None = None) -> RemoteExport:
    tf2onnx = require("tf2onnx")
    try:
        interpreter = make_interpreter(data)
    except Exception as exc:  # the interpreter raises ValueError/RuntimeError for foreign or corrupt files
        raise BadSourceError(f"{source} is not a TFLite model the interpreter can load ({first_line(exc, 200)}).") from exc
    inputs_io, outputs_io = io_tensors(interpreter)
    inputs = _input_specs(inputs_io, options, value_ranges or {})
    start = time.perf_counter()
    model = _tf2onnx(data, options.opset, source)
    seconds = time.perf_counter() - start
    rename_tensors(model, {d["name"]: n for n, d in inputs_io + outputs_io})
    _set_input_shapes(model, inputs)
    steps, notes = _output_steps(interpreter, outputs_io)
    notes.insert(0, f"reference: {runtime_name()} interpreter")
    return RemoteExport(
        model.SerializeToString(), tuple(inputs), tuple(n for n, _ in outputs_io),
        f"tf2onnx {tf2onnx.__version__} (TFLite, opset {options.opset})", seconds, keep(data, "tflite"),
        recipe, tuple(notes), steps,
    )


def _input_specs(inputs_io: list[tuple[str, dict]], options: ExportOptions,
                 value_ranges: dict[str, tuple[float, float]]) -> list[TensorSpec]:
    if options.inputs and len(options.inputs) != len(inputs_io):
        raise OnnxmendError(f"The model has {len(inputs_io)} input(s) but {len(options.inputs)} --input value(s) were given.")
    specs = []
    for i, (name, d) in enumerate(inputs_io):
        signature = [int(v) for v in d.get("shape_signature", d["shape"])]
        shape: list[int | str | None] = [v if v > 0 else None for v in signature]
        if options.inputs:
            given = options.inputs[i]
            if len(given.shape) != len(shape):
                raise OnnxmendError(f"--input {given.name} has rank {len(given.shape)}; the model's input {name} has rank {len(shape)}.")
            shape = list(given.shape)
        if shape and (options.dynamic_batch or shape[0] is None):
            shape[0] = "batch" if options.dynamic_batch else 1
        dtype = np.dtype(d["dtype"]).name
        layout = "NHWC" if len(shape) == 4 else ("NLC" if len(shape) == 3 else "other")
        if dtype.startswith("float"):  # a zoo entry's one declared range goes by the Keras input's name
            only = next(iter(value_ranges.values())) if len(value_ranges) == 1 else None
            value_range = value_ranges.get(name, only)
        else:
            value_range = _INT_RANGES.get(dtype)
        specs.append(TensorSpec(name, tuple(shape), dtype, layout, value_range))
    return specs


def _tf2onnx(data: bytes, opset: int, source: str) -> onnx.ModelProto:
    tf2onnx = require("tf2onnx")
    with tempfile.TemporaryDirectory(prefix="onnxmend-tflite-") as folder:
        path = Path(folder) / "model.tflite"
        path.write_bytes(data)
        try:
            model, _ = tf2onnx.convert.from_tflite(str(path), opset=opset)
        except Exception as exc:  # tf2onnx raises anything from ValueError to KeyError on odd graphs
            raise OnnxmendError(f"tf2onnx could not convert {source} ({type(exc).__name__}: {first_line(exc, 200)}).") from exc
    return model


def _set_input_shapes(model: onnx.ModelProto, specs: list[TensorSpec]) -> None:
    by_name = {s.name: s for s in specs}
    for vi in model.graph.input:
        spec = by_name.get(vi.name)
        if spec is None:
            continue
        for dim, value in zip(vi.type.tensor_type.shape.dim, spec.shape):
            if isinstance(value, int):
                dim.dim_value = value
            else:
                dim.dim_param = value or "batch"


def _output_steps(interpreter: Any, outputs_io: list[tuple[str, dict]]) -> tuple[dict[str, float], list[str]]:
    """One quantization step per quantized output, in the output's own units, and a note saying so."""
    steps, notes = {}, []
    producers = _dequantize_inputs(interpreter)
    for name, d in outputs_io:
        scale, zero_point = d.get("quantization", (0.0, 0))
        dtype = np.dtype(d["dtype"]).name
        if dtype in _INT_RANGES and scale:
            steps[name] = 1.0
            notes.append(f"output {name} is {dtype} (scale {scale:.4g}, zero point {zero_point}): "
                         "parity allows 1 quantization step")
        elif d["index"] in producers:
            steps[name] = producers[d["index"]]
            notes.append(f"output {name} is dequantized from int8 (scale {steps[name]:.4g}): "
                         "parity allows 1 quantization step")
    return steps, notes


def _dequantize_inputs(interpreter: Any) -> dict[int, float]:
    """Output tensor index -> the scale of the tensor a DEQUANTIZE op made it from."""
    ops = getattr(interpreter, "_get_ops_details", lambda: [])()
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    found = {}
    for op in ops:
        if op["op_name"] == "DEQUANTIZE" and len(op["inputs"]) == 1:
            scale = details.get(int(op["inputs"][0]), {}).get("quantization", (0.0, 0))[0]
            if scale:
                found[int(op["outputs"][0])] = float(scale)
    return found
