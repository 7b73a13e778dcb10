"""What every exporter returns: the raw ONNX model, its I/O specification and a source runner.

A *source runner* runs the original model in its own framework on numpy inputs keyed by the ONNX
input names and returns numpy outputs keyed by the ONNX output names, so validation can compare the
two without knowing which framework it talks to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Literal, Mapping

import numpy as np
import onnx

Layout = Literal["NCHW", "NHWC", "NCL", "NLC", "other"]
Arrays = Mapping[str, np.ndarray]
SourceRunner = Callable[[Arrays], dict[str, np.ndarray]]


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


@dataclass
class Export:
    """The result of exporting a source model to ONNX."""

    model: onnx.ModelProto
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    source_runner: SourceRunner | None
    framework: str  # "torch", "keras", "onnx", ...
    exporter: str  # which exporter actually ran, e.g. "torch.onnx (dynamo)", "tf2onnx 1.17.0"
    source: str  # the SOURCE string as the user gave it
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def is_nhwc(self) -> bool:
        return any(spec.layout in ("NHWC", "NLC") for spec in self.inputs)
