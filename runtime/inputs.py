"""Seeded input synthesis, so every comparison in onnxmend is reproducible."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import onnx

from onnxmend.exporters.base import TensorSpec

_ONNX_TO_NUMPY = {
    onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.DOUBLE: "float64", onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.INT32: "int32", onnx.TensorProto.INT8: "int8", onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.BOOL: "bool",
}


def specs_from_model(model: onnx.ModelProto) -> list[TensorSpec]:
    """Input specs read from the graph (initializers that double as inputs are not inputs)."""
    inits = {t.name for t in model.graph.initializer}
    return [_spec(vi) for vi in model.graph.input if vi.name not in inits]


def output_specs_from_model(model: onnx.ModelProto) -> list[TensorSpec]:
    return [_spec(vi) for vi in model.graph.output]


def _spec(vi: onnx.ValueInfoProto) -> TensorSpec:
    tt = vi.type.tensor_type
    shape = tuple(
        d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tt.shape.dim
    )
    return TensorSpec(vi.name, shape, _ONNX_TO_NUMPY.get(tt.elem_type, "float32"))


def synthesize(
    specs: Sequence[TensorSpec], seed: int = 0, batch: int = 1, default_dim: int = 8
) -> dict[str, np.ndarray]:
    """Standard-normal floats, small non-negative ints (or ``value_range``), random bools."""
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for spec in specs:
        shape = spec.concrete_shape(batch, default_dim)
        dtype = np.dtype(spec.dtype)
        if dtype == np.bool_:
            feeds[spec.name] = rng.random(shape) > 0.5
        elif np.issubdtype(dtype, np.integer):
            low, high = spec.value_range or (0, 2)
            feeds[spec.name] = rng.integers(int(low), int(high), size=shape).astype(dtype)
        else:
            low_high = spec.value_range
            if low_high:
                values = rng.uniform(low_high[0], low_high[1], size=shape)
            else:
                values = rng.standard_normal(shape)
            feeds[spec.name] = values.astype(dtype)
    return feeds
