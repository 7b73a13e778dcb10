"""Keras / TensorFlow sources: ``keras:NAME``, ``model.keras``, ``model.h5`` and SavedModel directories.

``keras:NAME`` builds ``keras.applications.NAME(weights=None, classifier_activation=None)`` (logits, nothing
downloaded) at its default input size, then either loads ``--weights`` or draws
:func:`~onnxmend.exporters.keras.init.realistic_random_init` weights seeded by ``options.seed``.

Conversion wraps the model in a ``tf.function`` with an input signature and runs
``tf2onnx.convert.from_function`` (``from_keras`` breaks with Keras 3), with the workarounds of
:mod:`onnxmend.exporters.keras.tf_compat` active only while tracing; models with more than 256 MB of weights
are traced with their weights as inputs (:mod:`onnxmend.exporters.keras.weights_as_inputs`). Inputs stay
NHWC (layout ``"NHWC"`` for 4-D, ``"NLC"`` for 3-D inputs). The batch axis is static 1 unless
``--dynamic-batch`` (then ``"batch"``) or ``--input name:2x224x224x3`` says otherwise. ONNX input and
output names are the Keras input and output layer names (``predictions`` for keras.applications),
sanitised for TensorFlow.

The export carries the untouched model as its :class:`~onnxmend.exporters.base.SourceModel`; the runtime
runs it in a ``tf.function`` with ``training=False``.
"""

from __future__ import annotations

import difflib
import logging
import shutil
import time
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from onnxmend.core.deps import require
from onnxmend.core.errors import BadSourceError, OnnxmendError, first_line
from onnxmend.core.specs import TensorSpec
from onnxmend.core.weight_files import remove_with, weights_folder
from onnxmend.exporters.base import Export, SourceModel
from onnxmend.exporters.keras import weights_as_inputs
from onnxmend.exporters.keras.calls import call_model, tf_name, tf_shape
from onnxmend.exporters.keras.init import realistic_random_init
from onnxmend.exporters.keras.specs import (
    declared_from_overrides,
    declared_inputs,
    declared_specs,
    graph_output_specs,
    input_specs,
    output_names,
    stable_input_names,
)
from onnxmend.exporters.keras.tf_compat import convert_function
from onnxmend.exporters.keras.weights_as_inputs import HEAVY_KERAS_BYTES, bind_weights, weight_feeding_function
from onnxmend.exporters.options import ExportOptions, InputArg

log = logging.getLogger(__name__)

# Input ranges keras.applications families expect: their own preprocessing layers take raw [0, 255]
# pixels; the others take the output of their preprocess_input ("tf" mode [-1, 1], "caffe" mode BGR
# minus the ImageNet mean).
_APP_VALUE_RANGES: tuple[tuple[str, tuple[float, float]], ...] = (
    ("EfficientNet", (0.0, 255.0)), ("ConvNeXt", (0.0, 255.0)), ("RegNet", (0.0, 255.0)),
    ("MobileNetV3", (0.0, 255.0)), ("MobileNet", (-1.0, 1.0)), ("Xception", (-1.0, 1.0)),
    ("Inception", (-1.0, 1.0)), ("NASNet", (-1.0, 1.0)), ("ResNet", (-128.0, 128.0)),
    ("VGG", (-128.0, 128.0)),
)


def export_keras_source(source: str, options: ExportOptions) -> Export:
    """Export ``keras:NAME``, a ``.keras``/``.h5`` file or a SavedModel directory."""
    keras = require("keras")
    if source.startswith("keras:"):
        name = source[len("keras:"):]
        keras.utils.set_random_seed(options.seed)
        model = build_application(name, options.inputs)
        value_range = application_value_range(name)
        ranges = {n: value_range for n, _, _ in declared_inputs(model, not options.keep_interface)} if value_range else {}
        if options.weights:
            load_weights(model, options.weights)
            notes = [f"weights loaded from {options.weights}"]
        else:
            report = realistic_random_init(model, options.seed, value_range=value_range)
            notes = [f"random weights (realistic init, seed {options.seed}): {report}"]
        exported = export_keras_model(model, source, options, value_ranges=ranges)
        exported.notes[:0] = notes
        return exported
    path = Path(source)
    if path.is_dir():
        return export_saved_model(path, source, options)
    model = load_keras_file(path, options.trust_source)
    if options.weights:
        load_weights(model, options.weights)
    return export_keras_model(model, source, options)


def export_keras_model(
    model: Any, source: str, options: ExportOptions,
    value_ranges: Mapping[str, tuple[float, float]] | None = None,
) -> Export:
    """Export an in-memory ``keras.Model`` with the weights it has."""
    tf = require("tensorflow")
    tf2onnx = require("tf2onnx")
    value_ranges = dict(value_ranges or {})
    declared = declared_inputs(model, not options.keep_interface) or declared_from_overrides(model, options.inputs)
    inputs = input_specs(declared, options.inputs, options.dynamic_batch, value_ranges, options.keep_interface)
    own_inputs, own_outputs = declared_specs(model, declared_inputs(model, stable=False) or declared)
    out_names = output_names(model)
    signature = [tf.TensorSpec(tf_shape(s.shape), s.dtype, name=s.name) for s in inputs]

    start = time.perf_counter()
    weights = sum(int(np.prod(w.shape)) * np.dtype(w.dtype).itemsize for w in model.weights)
    what = f"Keras model {model.name!r}"
    notes = []
    store = None
    if weights > HEAVY_KERAS_BYTES:
        store = weights_folder()
        try:
            onnx_model, rewrites, note = _export_weights_as_inputs(model, signature, out_names, options, what, store)
        except BaseException:
            shutil.rmtree(store, ignore_errors=True)
            raise
        notes.append(note)
    else:
        @tf.function(input_signature=signature, autograph=False)
        def export_fn(*args):
            return call_model(model, args, out_names)

        onnx_model, rewrites = convert_function(export_fn, signature, options.opset, what)
    seconds = time.perf_counter() - start
    if rewrites.grouped_convs or rewrites.depthwise_convs:
        notes.append(
            f"traced {rewrites.depthwise_convs} depthwise and {rewrites.grouped_convs} grouped Conv2D "
            "without Keras' XLA wrapper so tf2onnx can convert them"
        )
    exported = Export(
        onnx_model, inputs, graph_output_specs(onnx_model),
        SourceModel("keras-model", "keras", model, tuple(inputs), tuple(_graph_output_names(onnx_model, out_names))),
        "keras", f"tf2onnx {tf2onnx.__version__} (opset {options.opset})", source, seconds, notes,
        declared_inputs=own_inputs, declared_outputs=own_outputs,
    )
    if store is not None:  # the weights' file lives as long as the export (or to the end of the process)
        remove_with(exported, store)
    return exported


def _export_weights_as_inputs(model: Any, signature: list[Any], out_names: Sequence[str], options: ExportOptions,
                              what: str, store: Path) -> tuple[Any, Any, str]:
    """A heavy model converted with its big weights as inputs, then bound to a file in ``store`` that the
    model's initializers read from (:mod:`onnxmend.exporters.keras.weights_as_inputs`)."""
    feed = weight_feeding_function(model, signature, lambda args: call_model(model, args, out_names))
    onnx_model, rewrites = convert_function(feed.function, feed.signature, options.opset, what)
    bound, folded = bind_weights(onnx_model, feed.variables, store / "weights.bin")
    mib = weights_as_inputs.FED_BYTES / (1 << 20)
    return onnx_model, rewrites, (f"traced with its {bound} weights of {mib:g} MiB or more as inputs, bound "
                                  f"afterwards ({folded} data-movement ops on them folded): tf2onnx held no copy "
                                  "of them, and they stay in a temporary file until the model is written")


def load_keras_source(source: str, options: ExportOptions) -> SourceModel:
    """A Keras model as a source model, without converting it (what ``bench`` times): keras.applications
    models get Keras' own seeded initialiser, not the realistic init, since latency does not depend on weights."""
    if source.startswith("keras:"):
        require("keras").utils.set_random_seed(options.seed)
        name = source[len("keras:"):]
        model = build_application(name, options.inputs)
        value_range = application_value_range(name)
    else:
        model, value_range = load_keras_file(Path(source), options.trust_source), None
    declared = declared_inputs(model) or declared_from_overrides(model, options.inputs)
    ranges = {n: value_range for n, _, _ in declared} if value_range else {}
    inputs = input_specs(declared, options.inputs, True, ranges)
    return SourceModel("keras-model", "keras", model, tuple(inputs), tuple(output_names(model)))


def export_saved_model(path: Path, source: str, options: ExportOptions) -> Export:
    """Export a SavedModel directory through its ``serving_default`` signature."""
    tf = require("tensorflow")
    tf2onnx = require("tf2onnx")
    if not (path / "saved_model.pb").is_file():
        raise BadSourceError(f"{path} is a directory but not a SavedModel (it has no saved_model.pb).")
    try:
        loaded = tf.saved_model.load(str(path))
    except Exception as exc:  # TF raises its own error types for corrupt or foreign graphs
        raise BadSourceError(f"Cannot load the SavedModel in {path} ({type(exc).__name__}: {first_line(exc)}).") from exc
    serving = loaded.signatures.get("serving_default")
    if serving is None:
        raise BadSourceError(f"The SavedModel in {path} has no serving_default signature.")
    arg_specs = serving.structured_input_signature[1]
    arg_names = sorted(arg_specs)
    own = [tf_name(n) for n in arg_names]
    names = own if options.keep_interface else stable_input_names(own)
    declared = [(m, tuple(arg_specs[n].shape.as_list()), arg_specs[n].dtype.name) for m, n in zip(names, arg_names)]
    inputs = input_specs(declared, options.inputs, options.dynamic_batch, {}, options.keep_interface)
    out_names = sorted(serving.structured_outputs)
    signature = [tf.TensorSpec(tf_shape(s.shape), s.dtype, name=s.name) for s in inputs]

    def call(*args):
        # Through ``loaded``: the signature alone does not keep the SavedModel's variables alive.
        result = loaded.signatures["serving_default"](**dict(zip(arg_names, args)))
        return {name: result[name] for name in out_names}

    start = time.perf_counter()
    onnx_model, _ = convert_function(
        tf.function(call, input_signature=signature, autograph=False), signature, options.opset, f"SavedModel {path}",
    )
    seconds = time.perf_counter() - start
    return Export(
        onnx_model, inputs, graph_output_specs(onnx_model),
        SourceModel("tf-function", "tensorflow", call, tuple(inputs), tuple(out_names)),
        "tensorflow", f"tf2onnx {tf2onnx.__version__} (opset {options.opset})", source, seconds,
        declared_inputs=[TensorSpec(m, d[1], d[2], "NHWC" if len(d[1]) == 4 else "other")
                         for m, d in zip(own, declared)],
    )


def build_application(name: str, overrides: Sequence[InputArg] = ()) -> Any:
    """``keras.applications.NAME`` with no weights and logits out; ``--input`` may set the image size."""
    keras = require("keras")
    names = application_names()
    if name not in names:
        close = difflib.get_close_matches(name, names, n=3) or ["MobileNetV2", "ResNet50", "EfficientNetB0", "ConvNeXtTiny"]
        raise BadSourceError(f"Unknown Keras application {name!r}; did you mean {', '.join(close)}?")
    kwargs: dict[str, Any] = {"weights": None, "classifier_activation": None}
    if len(overrides) > 1:
        raise OnnxmendError(f"keras:{name} has one input but {len(overrides)} --input values were given.")
    if overrides:
        kwargs["input_shape"] = tuple(overrides[0].shape[1:])
    try:
        return getattr(keras.applications, name)(**kwargs)
    except (ValueError, TypeError) as exc:
        raise OnnxmendError(f"keras.applications.{name} cannot be built as asked ({first_line(exc)}).") from exc


def application_names() -> list[str]:
    keras = require("keras")
    return sorted(n for n in dir(keras.applications) if n[:1].isupper() and callable(getattr(keras.applications, n)))


def application_value_range(name: str) -> tuple[float, float] | None:
    return next((r for prefix, r in _APP_VALUE_RANGES if name.startswith(prefix)), None)


def load_keras_file(path: Path, trust_source: bool = False) -> Any:
    """A ``.keras``/``.h5`` model, with Keras' safe mode on unless the user trusts the file (a Lambda layer's
    Python function is code from the file; Keras refuses it in safe mode and the full reason is shown)."""
    keras = require("keras")
    if not path.is_file():
        raise BadSourceError(f"{path} does not exist.")
    try:
        return keras.models.load_model(str(path), compile=False, safe_mode=not trust_source)
    except Exception as exc:  # Keras raises ValueError, OSError, h5py and zipfile errors alike
        if "safe_mode" in str(exc):
            reason = " ".join(str(exc).split()).split(" If you trust")[0]
            raise BadSourceError(
                f"Keras refuses to load {path} in safe mode: {reason} onnxmend runs no code from a model file; "
                "if you trust this file, pass --trust-source."
            ) from exc
        raise BadSourceError(
            f"Cannot load {path} as a Keras model ({type(exc).__name__}: {first_line(exc)}); "
            "a weights-only file goes with keras:NAME and --weights."
        ) from exc


def load_weights(model: Any, weights: str) -> None:
    path = Path(weights)
    if not path.is_file():
        raise BadSourceError(f"Weights file {path} does not exist.")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model.load_weights(str(path))
    except Exception as exc:  # shape mismatches are ValueError, unreadable files OSError or h5py errors
        raise BadSourceError(
            f"Cannot load weights from {path} into {model.name} ({type(exc).__name__}: {first_line(exc)})."
        ) from exc
    # Keras only warns when parts of the file match nothing, leaving those layers with random weights.
    skipped = [str(w.message) for w in caught if "freshly-initialized" in str(w.message) or "Skipping" in str(w.message)]
    if skipped:
        raise BadSourceError(f"Weights in {path} do not cover {model.name} ({skipped[0].splitlines()[0][:200]}).")


def _graph_output_names(model: Any, names: Sequence[str]) -> list[str]:
    """The names the source's outputs go by: the model's own (a subclassed model names none before it runs,
    so the ONNX graph's)."""
    return list(names) or [o.name for o in model.graph.output]
