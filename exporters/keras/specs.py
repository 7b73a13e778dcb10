"""The I/O of a Keras model in ONNX terms: declared inputs, stable names, ``--input`` overrides, NHWC layouts."""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import numpy as np
import onnx

from onnxmend.core.errors import OnnxmendError
from onnxmend.core.specs import TensorSpec
from onnxmend.exporters.keras.calls import tf_name
from onnxmend.exporters.options import InputArg

_AUTO_INPUT_NAME = re.compile(r"(input_layer|keras_tensor|input|inputs|args)(_\d+)?")


def declared_inputs(model: Any) -> list[tuple[str, tuple[int | None, ...], str]]:
    """(name, shape, dtype) of each Keras model input: the input layer's name, valid for TensorFlow.

    Keras numbers auto-named inputs per process (``input_layer_3``), so those become ``input``
    (``input_0``, ``input_1``, ... for several) to keep ONNX names stable across runs.
    """
    tensors = _symbolic(model, "inputs")
    layer_names = [getattr(t, "_keras_history", (None,))[0] for t in tensors]
    names = [tf_name(op.name if op is not None else t.name) for op, t in zip(layer_names, tensors)]
    names = stable_input_names(names)
    return [(n, tuple(t.shape), str(np.dtype(t.dtype))) for n, t in zip(names, tensors)]


def declared_from_overrides(model: Any, overrides: Sequence[InputArg]) -> list[tuple[str, tuple, str]]:
    """A subclassed model declares no inputs; ``--input`` has to give them."""
    if not overrides:
        raise OnnxmendError(
            f"Keras model {model.name!r} declares no inputs (a subclassed model); give them with --input NAME:1x224x224x3."
        )
    return [(tf_name(o.name), (None, *o.shape[1:]), o.dtype) for o in overrides]


def _symbolic(model: Any, attr: str) -> list[Any]:
    """``model.inputs`` / ``model.outputs``, empty for subclassed models, which raise instead."""
    try:
        return list(getattr(model, attr) or [])
    except (AttributeError, ValueError):
        return []


def stable_input_names(names: Sequence[str]) -> list[str]:
    auto = [bool(_AUTO_INPUT_NAME.fullmatch(n)) for n in names]
    renamed = [("input" if len(names) == 1 else f"input_{i}") if a else n for i, (n, a) in enumerate(zip(names, auto))]
    return unique_names(renamed)


def input_specs(
    declared: Sequence[tuple[str, tuple[int | None, ...], str]], overrides: Sequence[InputArg],
    dynamic_batch: bool, value_ranges: Mapping[str, tuple[float, float]],
) -> list[TensorSpec]:
    """One NHWC/NLC TensorSpec per declared input, with ``--input`` shapes and names applied."""
    if overrides and len(overrides) != len(declared):
        raise OnnxmendError(f"The model has {len(declared)} input(s) but {len(overrides)} --input value(s) were given.")
    by_name = {o.name: o for o in overrides}
    specs = []
    for i, (name, model_shape, model_dtype) in enumerate(declared):
        override = by_name.get(name) or (overrides[i] if overrides else None)
        value_range = value_ranges.get(name)
        shape: list[int | str | None] = list(override.shape if override else model_shape)
        if override:
            _check_compatible(name, model_shape, override.shape)
            name = tf_name(override.name)
        if dynamic_batch:
            shape[0] = "batch"
        elif shape[0] is None:
            shape[0] = 1
        dtype = override.dtype if override else model_dtype
        layout = "NHWC" if len(shape) == 4 else ("NLC" if len(shape) == 3 else "other")
        specs.append(TensorSpec(name, tuple(shape), dtype, layout, value_range))
    return specs


def _check_compatible(name: str, model_shape: tuple, given: tuple) -> None:
    ok = len(model_shape) == len(given) and all(m is None or g is None or m == g for m, g in zip(model_shape, given))
    if not ok:
        shown = "x".join("?" if d is None else str(d) for d in model_shape)
        raise OnnxmendError(f"--input {name} does not fit the model's input shape {shown}.")


def output_names(model: Any) -> list[str]:
    names = getattr(model, "output_names", None) or [t.name for t in _symbolic(model, "outputs")]
    return unique_names([tf_name(n) for n in names])


def unique_names(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    result = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        result.append(name if count == 0 else f"{name}_{count}")
    return result


def graph_output_specs(model: onnx.ModelProto) -> list[TensorSpec]:
    return [
        TensorSpec(o.name, tuple(d.dim_value or d.dim_param or None for d in o.type.tensor_type.shape.dim))
        for o in model.graph.output
    ]


