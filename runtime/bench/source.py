"""The source framework as a benchmark subject, timed on the same inputs as the ONNX artifacts.

The subject is the source's own runner (:mod:`onnxmend.runtime.runners`) and what is timed is its
``timed_call``: inputs are converted to the framework's tensors once, before timing, and the model runs
natively — PyTorch eager under ``torch.inference_mode`` (with ``--compile`` also ``torch.compile``, whose
compilation lands in the cold run), Keras in a compiled ``tf.function`` (``training=False``; the cold run
includes tracing), a SavedModel through its serving function, an ONNX source on onnxruntime. Latency does
not depend on weight values, so a source rebuilt from its factory with other random weights times the same.

The source always runs on the CPU here, so bench times it in the CPU cells only.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

import numpy as np

from onnxmend.core.deps import require
from onnxmend.core.errors import first_line
from onnxmend.core.specs import TensorSpec
from onnxmend.exporters.base import SourceModel
from onnxmend.runtime.inputs import synthesize
from onnxmend.runtime.runners import source_runner

SOURCE_LABEL = "source"
COMPILED_LABEL = "source-compiled"
NOTES = {
    "torch-module": "torch eager under inference_mode, tensors prepared before timing",
    "keras-model": "Keras model in a tf.function, tensors prepared before timing; the cold run includes tracing",
    "tf-function": "SavedModel serving function in a tf.function, tensors prepared before timing",
    "onnx-bytes": "the ONNX source on onnxruntime (CPU), as given",
}
# TFLite, Paddle and MindSpore run in their framework's worker process: each timed call is one round trip.
_REMOTE_NOTE = "{what}, in its own worker process; tensors prepared before timing, each call includes one round trip to it"
NOTES.update({
    "tflite-model": _REMOTE_NOTE.format(what="the TFLite interpreter"),
    "paddle-layer": _REMOTE_NOTE.format(what="the Paddle Layer in dygraph under no_grad"),
    "paddle-program": _REMOTE_NOTE.format(what="the Paddle Inference predictor"),
    "mindspore-cell": _REMOTE_NOTE.format(what="the MindSpore Cell in PyNative mode"),
})
COMPILED_NOTE = "torch.compile; the cold run includes compilation"
TF_THREADS_NOTE = "--threads does not reach TensorFlow: its thread pools are fixed once it has started"


@dataclass
class BenchSource:
    """The source as bench sees it: the SOURCE string, its model, and the subjects to time."""

    source: str
    model: SourceModel
    labels: list[str] = field(default_factory=lambda: [SOURCE_LABEL])

    @classmethod
    def of(cls, source: str, model: SourceModel, compile_: bool) -> BenchSource:
        labels = [SOURCE_LABEL] + ([COMPILED_LABEL] if compile_ and model.kind == "torch-module" else [])
        return cls(source, model, labels)


@dataclass
class SourceSubject:
    """A prepared source callable, or the reason it could not be prepared."""

    label: str
    call: Callable[[], object] | None
    notes: list[str]
    reason: str | None = None
    probe: Callable[[], dict[str, np.ndarray]] | None = None


def source_specs(src: BenchSource) -> list[TensorSpec]:
    """The source's input specs with the batch axis left free, so every requested batch can be fed."""
    return [replace(s, shape=(None,) + tuple(s.shape[1:])) if s.shape else s for s in src.model.inputs]


def source_feeds(src: BenchSource, batch: int, seed: int) -> dict[str, np.ndarray]:
    return synthesize(source_specs(src), seed=seed, batch=batch)


def source_subjects(src: BenchSource, feeds: Mapping[str, np.ndarray], threads: int) -> list[SourceSubject]:
    """One subject per label of ``src``: the runner's native call and, when asked, torch.compile."""
    notes = [NOTES.get(src.model.kind, "")]
    if src.model.kind == "torch-module" and threads:
        require("torch").set_num_threads(threads)
    elif src.model.framework in ("keras", "tensorflow") and threads:
        notes.append(TF_THREADS_NOTE)
    try:
        runner = source_runner(src.model)
        subjects = [SourceSubject(SOURCE_LABEL, runner.timed_call(feeds), notes, probe=lambda: runner.run(feeds))]
    except Exception as exc:  # the framework's own error types
        return [SourceSubject(SOURCE_LABEL, None, [], f"the source could not be prepared: {first_line(exc)}")]
    if COMPILED_LABEL in src.labels:
        subjects.append(_compiled_subject(src.model, feeds))
    return subjects


def _compiled_subject(model: SourceModel, feeds: Mapping[str, np.ndarray]) -> SourceSubject:
    torch = require("torch")
    try:
        compiled = torch.compile(model.model)
    except Exception as exc:  # torch.compile raises many backend-specific types
        return SourceSubject(COMPILED_LABEL, None, [], f"torch.compile failed: {first_line(exc, 200)}")
    return SourceSubject(COMPILED_LABEL, source_runner(replace(model, model=compiled)).timed_call(feeds), [COMPILED_NOTE])
