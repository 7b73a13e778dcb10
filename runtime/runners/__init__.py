"""Runners: one protocol (:class:`~onnxmend.runtime.runners.base.Runner`) for everything that executes a model.

:func:`onnx_runner` runs an ONNX model on onnxruntime in the source's layout; :func:`source_runner` runs an
export's original model in its own framework (torch, Keras/TensorFlow, or onnxruntime on the untouched file
for an ONNX source; TFLite, Paddle and MindSpore in their framework's worker process through
:class:`~onnxmend.runtime.runners.remote_runner.RemoteRunner`). Frameworks are imported only when their
runner is made.
"""

from __future__ import annotations

from pathlib import Path

import onnx

from onnxmend.core.errors import OnnxmendError
from onnxmend.exporters.base import REMOTE_KINDS, Export, SourceModel
from onnxmend.runtime.runners.base import Runner
from onnxmend.runtime.runners.interface import SourceLayout
from onnxmend.runtime.runners.ort_runner import OnnxRunner
from onnxmend.runtime.session import OptLevel, Provider

__all__ = ["OnnxRunner", "Runner", "SourceLayout", "onnx_runner", "source_runner"]


def onnx_runner(model: onnx.ModelProto | str | Path, provider: Provider = "cpu", threads: int = 0,
                opt_level: OptLevel = "disable", tf32: bool = False) -> SourceLayout:
    """onnxruntime on ``model``, taking and returning arrays in the source's layout."""
    runner = OnnxRunner(model, provider, threads, opt_level, tf32)
    return SourceLayout(runner, runner.model)


def source_runner(source: Export | SourceModel) -> Runner:
    """The runner for an export's original model, in its own framework."""
    model = source.source_model if isinstance(source, Export) else source
    if model is None:
        what = source.source if isinstance(source, Export) else "this source"
        raise OnnxmendError(f"{what} has no source model to run in its own framework.")
    if model.kind == "torch-module":
        from onnxmend.runtime.runners.torch_runner import TorchRunner

        return TorchRunner(model)
    if model.kind in ("keras-model", "tf-function"):
        from onnxmend.runtime.runners.keras_runner import KerasRunner

        return KerasRunner(model)
    if model.kind in REMOTE_KINDS:
        from onnxmend.runtime.runners.remote_runner import RemoteRunner

        return RemoteRunner(model)
    return OnnxRunner(onnx.load_from_string(model.model), provider="cpu", opt_level="disable")
