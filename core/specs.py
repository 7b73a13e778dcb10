"""One graph input or output (:class:`TensorSpec`), given by an exporter or read from an ONNX graph."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import onnx

Layout = Literal["NCHW", "NHWC", "NCL", "NLC", "other"]

ONNX_TO_NUMPY = {
    onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.FLOAT16: "float16",
    onnx.TensorProto.DOUBLE: "float64", onnx.TensorProto.INT64: "int64",
    onnx.TensorProto.INT32: "int32", onnx.TensorProto.INT8: "int8", onnx.TensorProto.UINT8: "uint8",
    onnx.TensorProto.BOOL: "bool",
}


@dataclass(frozen=True)
class TensorSpec:
    """One graph input or output. ``None`` in ``shape`` (or a name) marks a dynamic dimension."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: str = "float32"
    layout: Layout = "other"
    # Inclusive-exclusive range for synthesised integer inputs (token ids, indices).
    value_range: tuple[float, float] | None = None

    @property
    def dynamic_axes(self) -> tuple[int, ...]:
        return tuple(i for i, d in enumerate(self.shape) if not isinstance(d, int))

    def concrete_shape(self, batch: int = 1, default_dim: int = 1) -> tuple[int, ...]:
        """The shape with the batch axis set to ``batch`` and other dynamic axes to ``default_dim``."""
        return tuple(
            d if isinstance(d, int) else (batch if i == 0 else default_dim)
            for i, d in enumerate(self.shape)
        )

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name, "shape": [d if isinstance(d, int) else (d or "?") for d in self.shape],
            "dtype": self.dtype, "layout": self.layout, "dynamic_axes": list(self.dynamic_axes),
        }


def specs_from_model(model: onnx.ModelProto) -> list[TensorSpec]:
    """Input specs read from the graph (initializers that double as inputs are not inputs)."""
    inits = {t.name for t in model.graph.initializer}
    return [spec_of(vi) for vi in model.graph.input if vi.name not in inits]


def output_specs_from_model(model: onnx.ModelProto) -> list[TensorSpec]:
    return [spec_of(vi) for vi in model.graph.output]


def spec_of(vi: onnx.ValueInfoProto) -> TensorSpec:
    """The spec of a graph input/output; a dim stored as a negative number (``-1``) is dynamic."""
    tt = vi.type.tensor_type
    shape = tuple(
        d.dim_value if d.HasField("dim_value") and d.dim_value >= 0 else (d.dim_param or None) for d in tt.shape.dim
    )
    return TensorSpec(vi.name, shape, ONNX_TO_NUMPY.get(tt.elem_type, "float32"))
