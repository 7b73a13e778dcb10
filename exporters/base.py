"""What every exporter returns: the raw ONNX model, its I/O specification and the source model itself.

The :class:`SourceModel` is the original model as a runner needs it — which framework, the live object
(an ``nn.Module``, a ``keras.Model``, a SavedModel's serving function, the bytes of an ONNX file) and its
input and output names in ONNX terms. Running it is the runtime's job (``onnxmend.runtime.runners``), so
exporters never execute anything but the exporter itself.

TFLite, Paddle and MindSpore sources live in their framework's own process
(:mod:`onnxmend.exporters.remote`): their ``model`` is a
:class:`~onnxmend.exporters.remote.RemoteModel`, a handle the runtime's runner talks to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import onnx

from onnxmend.core.specs import TensorSpec

SourceKind = Literal[
    "torch-module", "keras-model", "tf-function", "onnx-bytes",
    # in the framework's own worker process (model is a RemoteModel)
    "tflite-model", "paddle-layer", "paddle-program", "mindspore-cell",
]
REMOTE_KINDS: tuple[SourceKind, ...] = ("tflite-model", "paddle-layer", "paddle-program", "mindspore-cell")


@dataclass(frozen=True)
class SourceModel:
    """The original model. ``inputs`` are the specs it takes (its own layout), ``output_names`` the ONNX
    names its outputs map to, in order."""

    kind: SourceKind
    framework: str  # "torch", "keras", "tensorflow", "onnx", "tflite", "paddle", "mindspore"
    model: Any
    inputs: tuple[TensorSpec, ...]
    output_names: tuple[str, ...]

    @property
    def input_names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.inputs)


@dataclass
class Export:
    """The result of exporting a source model to ONNX."""

    model: onnx.ModelProto
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    source_model: SourceModel | None
    framework: str  # "torch", "keras", "onnx", ...
    exporter: str  # which exporter actually ran, e.g. "torch.onnx (dynamo)", "tf2onnx 1.17.0"
    source: str  # the SOURCE string as the user gave it
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)
    # Integer outputs of a quantized model: the size of one quantization step in the output's own units
    # (1.0 for an int8 output). Validation allows them a difference in steps, not a float tolerance.
    output_steps: dict[str, float] = field(default_factory=dict)
    # The source's own interface, before the exporter's decisions (a Keras ``None`` batch stays ``None``,
    # Keras' own input names): what ``convert``'s interface table compares the written model with.
    # Empty: the same as ``inputs`` / the raw model's outputs.
    declared_inputs: list[TensorSpec] = field(default_factory=list)
    declared_outputs: list[TensorSpec] = field(default_factory=list)

    @property
    def is_nhwc(self) -> bool:
        return any(spec.layout in ("NHWC", "NLC") for spec in self.inputs)
