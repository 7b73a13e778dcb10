"""The source framework as a benchmark subject, timed on the same inputs as the ONNX artifacts.

What is timed depends on the source:

- PyTorch factories (``torch:pkg.mod:factory``, ``file.py:factory``): the module natively, eager under
  ``torch.inference_mode`` on tensors made once before timing; with ``--compile`` also ``torch.compile``
  (its compilation lands in the cold run, which says so). The module is built again from the factory with
  the seed, so its weights may differ from the exported ones; latency does not depend on weight values.
- Keras (``keras:NAME``, ``.keras``, ``.h5``): the model in a ``tf.function`` (``training=False``) on
  tensors made once; the cold run includes tracing. The model is loaded (or built with Keras' own seeded
  initialiser, not the exporter's realistic init) without converting it to ONNX again, which would cost
  tens of seconds; its input specs come from the Keras exporter's helpers, so names, NHWC shapes and value
  ranges match what ``export`` gives. Latency does not depend on weight values.
- Everything else (SavedModel, .pt2, ONNX files): ``Export.source_runner`` from ``export(SOURCE)``, which
  takes numpy and returns numpy, so its timings include the numpy-to-framework conversions; the row says so.

The source always runs on the CPU here, so bench times it in the CPU cells only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from onnxmend.core.errors import OnnxmendError
from onnxmend.exporters import ExportOptions, export, source_kind
from onnxmend.exporters.base import SourceRunner, TensorSpec
from onnxmend.runtime.inputs import synthesize

log = logging.getLogger(__name__)

SOURCE_LABEL = "source"
COMPILED_LABEL = "source-compiled"
RUNNER_NOTE = "times Export.source_runner: includes numpy<->framework tensor conversion"
EAGER_NOTE = "torch eager under inference_mode, tensors prepared before timing"
COMPILED_NOTE = "torch.compile; the cold run includes compilation"
TF_THREADS_NOTE = "--threads does not reach TensorFlow: its thread pools are fixed once it has started"
KERAS_NOTE = "Keras model in a tf.function, tensors prepared before timing; the cold run includes tracing"


@dataclass
class SourceModel:
    """The source as bench sees it: its input specs and either a native model or a numpy runner."""

    source: str
    framework: str
    inputs: list[TensorSpec]
    native: Any | None = None
    runner: SourceRunner | None = None
    labels: list[str] = field(default_factory=lambda: [SOURCE_LABEL])


@dataclass
class SourceSubject:
    """A prepared source callable, or the reason it could not be prepared."""

    label: str
    call: Callable[[], object] | None
    notes: list[str]
    reason: str | None = None


def load_source(source: str, seed: int, compile_: bool) -> SourceModel:
    """The native model where bench knows how to time it, else ``export(source)`` for its runner."""
    keras_model = _keras_model(source, seed)
    if keras_model is not None:
        return SourceModel(source, "keras", _keras_specs(source, keras_model), native=keras_model)
    exported = export(source, ExportOptions(seed=seed))
    if exported.framework == "torch" and not source.endswith(".pt2"):
        labels = [SOURCE_LABEL] + ([COMPILED_LABEL] if compile_ else [])
        return SourceModel(source, "torch", exported.inputs, _torch_module(source, seed), labels=labels)
    if exported.source_runner is None:
        raise OnnxmendError(f"{source} has no source runner to benchmark; bench the ONNX files alone.")
    return SourceModel(source, exported.framework, exported.inputs, runner=exported.source_runner)


def _keras_model(source: str, seed: int) -> Any | None:
    if source_kind(source) != "keras" or Path(source).is_dir():
        return None
    from onnxmend.exporters.keras import build_application, load_keras_file
    from onnxmend.exporters.tf_compat import import_keras

    if source.startswith("keras:"):
        import_keras().utils.set_random_seed(seed)
        return build_application(source[len("keras:"):])
    return load_keras_file(Path(source))


def _keras_specs(source: str, model: Any) -> list[TensorSpec]:
    from onnxmend.exporters.keras import application_value_range, declared_inputs, input_specs

    declared = declared_inputs(model)
    value_range = application_value_range(source[len("keras:"):]) if source.startswith("keras:") else None
    ranges = {name: value_range for name, _, _ in declared} if value_range else {}
    return input_specs(declared, (), True, ranges)


def _torch_module(source: str, seed: int) -> Any:
    import torch

    from onnxmend.exporters.pytorch import build_module

    torch.manual_seed(seed)
    return build_module(source).eval()


def source_specs(src: SourceModel) -> list[TensorSpec]:
    """The source's input specs with the batch axis left free, so every requested batch can be fed."""
    return [replace(s, shape=(None,) + tuple(s.shape[1:])) if s.shape else s for s in src.inputs]


def source_feeds(src: SourceModel, batch: int, seed: int) -> dict[str, np.ndarray]:
    return synthesize(source_specs(src), seed=seed, batch=batch)


def source_subjects(src: SourceModel, feeds: Mapping[str, np.ndarray], threads: int) -> list[SourceSubject]:
    """One subject per label of ``src``: eager (or the runner) and, when asked, torch.compile."""
    if src.native is None:
        runner = src.runner
        return [SourceSubject(SOURCE_LABEL, lambda: runner(feeds), [RUNNER_NOTE])]
    names = [s.name for s in src.inputs]
    if src.framework == "keras":
        notes = [KERAS_NOTE] + ([TF_THREADS_NOTE] if threads else [])
        return [SourceSubject(SOURCE_LABEL, _keras_call(src.native, [feeds[n] for n in names]), notes)]
    import torch

    if threads:
        torch.set_num_threads(threads)
    tensors = [torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in names]
    subjects = [SourceSubject(SOURCE_LABEL, _torch_call(src.native, tensors), [EAGER_NOTE])]
    if COMPILED_LABEL in src.labels:
        subjects.append(_compiled_subject(src.native, tensors))
    return subjects


def _torch_call(module: Any, tensors: list[Any]) -> Callable[[], object]:
    import torch

    def call() -> object:
        with torch.inference_mode():
            return module(*tensors)

    return call


def _keras_call(model: Any, arrays: list[np.ndarray]) -> Callable[[], object]:
    from onnxmend.exporters.tf_compat import import_tf

    tf = import_tf()

    tensors = [tf.constant(a) for a in arrays]
    function = tf.function(lambda *args: model(list(args) if len(args) > 1 else args[0], training=False),
                           autograph=False)
    return lambda: function(*tensors)


def _compiled_subject(module: Any, tensors: list[Any]) -> SourceSubject:
    import torch

    try:
        compiled = torch.compile(module)
    except Exception as exc:  # torch.compile raises many backend-specific types
        return SourceSubject(COMPILED_LABEL, None, [], f"torch.compile failed: {_first_line(exc)}")
    return SourceSubject(COMPILED_LABEL, _torch_call(compiled, tensors), [COMPILED_NOTE])


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:200]
