"""What one zoo entry is: a named builder, the framework it builds for, and its default I/O.

Builders are named as ``"module:function"`` inside ``onnxmend.models`` and imported only when the entry
is built, so listing the zoo never imports torch or TensorFlow.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

from onnxmend.core.deps import require
from onnxmend.core.specs import TensorSpec

Framework = Literal["torch", "keras", "onnx", "tflite", "paddle", "mindspore"]
# The module ``build`` needs: a TFLite entry builds a Keras model that its exporter converts to .tflite.
_REQUIRES = {"torch": "torch", "keras": "keras", "tflite": "keras", "paddle": "paddle", "mindspore": "mindspore"}


@dataclass(frozen=True)
class ZooEntry:
    """A reference model. ``build(seed)`` returns an ``nn.Module`` (carrying ``example_inputs``), a
    ``keras.Model`` (also for ``tflite`` entries, which their exporter converts to ``.tflite``, full-int8
    when ``quantize == "int8"``), an ``onnx.ModelProto`` (an ONNX file as another converter would write
    it), a ``paddle.nn.Layer`` or a MindSpore ``nn.Cell``; the last two are built only inside their
    framework's worker process. Twins (``twin_of``) built with the same seed share one set of numpy weights."""

    name: str
    framework: Framework
    description: str  # one line, naming the seed case it reproduces
    builder: str  # "module:function" inside onnxmend.models; function(seed) -> model
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[str, ...] = ("output",)
    twin_of: str | None = None
    quantize: Literal["", "int8"] = ""

    @property
    def value_ranges(self) -> dict[str, tuple[float, float]]:
        return {s.name: s.value_range for s in self.inputs if s.value_range is not None}

    def build(self, seed: int = 0) -> Any:
        if self.framework in _REQUIRES:  # one sentence when the framework is missing
            require(_REQUIRES[self.framework])
        module_name, function_name = self.builder.split(":")
        module = importlib.import_module(f"onnxmend.models.{module_name}")
        return getattr(module, function_name)(seed)


def nchw(shape: tuple[int, ...], name: str = "x") -> TensorSpec:
    return TensorSpec(name, shape, "float32", "NCHW")


def nhwc(shape: tuple[int, ...], name: str = "x") -> TensorSpec:
    return TensorSpec(name, shape, "float32", "NHWC")
