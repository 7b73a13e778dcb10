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


def declared_inputs(model: Any, stable: bool = True) -> list[tuple[str, tuple[int | None, ...], str]]:
    """(name, shape, dtype) of each Keras model input: the input layer's name, valid for TensorFlow.

    Keras numbers auto-named inputs per process (``input_layer_3``), so with ``stable`` those become
    ``input`` (``input_0``, ``input_1``, ... for several) to keep ONNX names stable across runs.
    """
    tensors = _symbolic(model, "inputs")
    layer_names = [getattr(t, "_keras_history", (None,))[0] for t in tensors]
    names = [tf_name(op.name if op is not None else t.name) for op, t in zip(layer_names, tensors)]
    names = stable_input_names(names) if stable else unique_names(names)
    return [(n, tuple(t.shape), str(np.dtype(t.dtype))) for n, t in zip(names, tensors)]


def declared_specs(model: Any, declared: Sequence[tuple[str, tuple, str]]) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """The Keras model's own inputs and outputs as specs (``None`` dims as Keras declares them)."""
    inputs = [TensorSpec(n, tuple(s), d, _layout(len(s))) for n, s, d in declared]
    tensors = _symbolic(model, "outputs")
    outputs = [TensorSpec(n, tuple(t.shape), str(np.dtype(t.dtype))) for n, t in zip(output_names(model), tensors)]
    return inputs, outputs


def _layout(rank: int) -> str:
    return "NHWC" if rank == 4 else ("NLC" if rank == 3 else "other")


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
    dynamic_batch: bool, value_ranges: Mapping[str, tuple[float, float]], keep: bool = False,
) -> list[TensorSpec]:
    """One NHWC/NLC TensorSpec per declared input, with ``--input`` shapes and names applied.

    With ``keep`` (``--keep-interface``) every dim the model declares dynamic stays dynamic; ``--input``
    may not fix one of them.
    """
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
            if keep:
                _check_kept(name, model_shape, override.shape)
            name = tf_name(override.name)
        if dynamic_batch:
            shape[0] = "batch"
        elif shape[0] is None and not keep:
            shape[0] = 1
        dtype = override.dtype if override else model_dtype
        specs.append(TensorSpec(name, tuple(shape), dtype, _layout(len(shape)), value_range))
    return specs


def _check_compatible(name: str, model_shape: tuple, given: tuple) -> None:
    ok = len(model_shape) == len(given) and all(m is None or g is None or m == g for m, g in zip(model_shape, given))
    if not ok:
        shown = "x".join("?" if d is None else str(d) for d in model_shape)
        raise OnnxmendError(f"--input {name} does not fit the model's input shape {shown}.")


def _check_kept(name: str, model_shape: tuple, given: tuple) -> None:
    fixed = [i for i, (m, g) in enumerate(zip(model_shape, given)) if m is None and g is not None]
    if fixed:
        raise OnnxmendError(
            f"--keep-interface keeps the dynamic dim {fixed[0]} of input {name}, but --input gives it a size; "
            "write ? there, or drop --keep-interface."
        )


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


