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

from onnxmend.core.specs import Layout, TensorSpec  # noqa: F401  (Export carries them)

Arrays = Mapping[str, np.ndarray]
SourceRunner = Callable[[Arrays], dict[str, np.ndarray]]


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
