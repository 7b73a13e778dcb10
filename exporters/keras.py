"""Keras / TensorFlow sources: ``keras:NAME``, ``model.keras``, ``model.h5`` and SavedModel directories.

``keras:NAME`` builds ``keras.applications.NAME(weights=None, classifier_activation=None)`` (logits, nothing
downloaded) at its default input size, then either loads ``--weights`` or draws
:func:`~onnxmend.exporters.keras_init.realistic_random_init` weights seeded by ``options.seed``.

Conversion wraps the model in a ``tf.function`` with an input signature and runs
``tf2onnx.convert.from_function`` (``from_keras`` breaks with Keras 3), with the workarounds of
:mod:`onnxmend.exporters.tf_compat` active only while tracing. Inputs stay NHWC (layout ``"NHWC"`` for
4-D, ``"NLC"`` for 3-D inputs). The batch axis is static 1 unless ``--dynamic-batch`` (then ``"batch"``)
or ``--input name:2x224x224x3`` says otherwise. ONNX input and output names are the Keras input and
output layer names (``predictions`` for keras.applications), sanitised for TensorFlow.

The source runner runs the original model, untouched, in a ``tf.function`` with ``training=False``.
"""

from __future__ import annotations

import difflib
import logging
import re
import time
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import onnx

from onnxmend.core.errors import BadSourceError, OnnxmendError
from onnxmend.exporters.base import Export, TensorSpec
from onnxmend.exporters.keras_init import realistic_random_init
from onnxmend.exporters.options import ExportOptions, InputArg
from onnxmend.exporters.tf_compat import convert_function, first_line, import_keras, import_tf, import_tf2onnx

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
_TF_NAME = re.compile(r"[^A-Za-z0-9_.\-/]")
_AUTO_INPUT_NAME = re.compile(r"(input_layer|keras_tensor|input|inputs|args)(_\d+)?")


def export_keras_source(source: str, options: ExportOptions) -> Export:
    """Export ``keras:NAME``, a ``.keras``/``.h5`` file or a SavedModel directory."""
    keras = import_keras()
    if source.startswith("keras:"):
        name = source[len("keras:"):]
        keras.utils.set_random_seed(options.seed)
        model = build_application(name, options.inputs)
        value_range = application_value_range(name)
        ranges = {n: value_range for n, _, _ in declared_inputs(model)} if value_range else {}
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
    model = load_keras_file(path)
    if options.weights:
        load_weights(model, options.weights)
    return export_keras_model(model, source, options)


def export_keras_model(
    model: Any, source: str, options: ExportOptions,
    value_ranges: Mapping[str, tuple[float, float]] | None = None,
) -> Export:
    """Export an in-memory ``keras.Model`` with the weights it has."""
    tf = import_tf()
    tf2onnx = import_tf2onnx()
    value_ranges = dict(value_ranges or {})
    declared = declared_inputs(model) or _declared_from_overrides(model, options.inputs)
    inputs = input_specs(declared, options.inputs, options.dynamic_batch, value_ranges)
    out_names = output_names(model)
    signature = [tf.TensorSpec(_tf_shape(s.shape), s.dtype, name=s.name) for s in inputs]

    @tf.function(input_signature=signature, autograph=False)
    def export_fn(*args):
        return _call_model(model, args, out_names)

    start = time.perf_counter()
    onnx_model, rewrites = convert_function(export_fn, signature, options.opset, f"Keras model {model.name!r}")
    seconds = time.perf_counter() - start
    notes = []
    if rewrites.grouped_convs or rewrites.depthwise_convs:
        notes.append(
            f"traced {rewrites.depthwise_convs} depthwise and {rewrites.grouped_convs} grouped Conv2D "
            "without Keras' XLA wrapper so tf2onnx can convert them"
        )
    return Export(
        onnx_model, inputs, graph_output_specs(onnx_model), keras_runner(model, inputs, out_names),
        "keras", f"tf2onnx {tf2onnx.__version__} (opset {options.opset})", source, seconds, notes,
    )


def export_saved_model(path: Path, source: str, options: ExportOptions) -> Export:
    """Export a SavedModel directory through its ``serving_default`` signature."""
    tf = import_tf()
    tf2onnx = import_tf2onnx()
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
    names = stable_input_names([_tf_name(n) for n in arg_names])
    declared = [(m, tuple(arg_specs[n].shape.as_list()), arg_specs[n].dtype.name) for m, n in zip(names, arg_names)]
    inputs = input_specs(declared, options.inputs, options.dynamic_batch, {})
    out_names = sorted(serving.structured_outputs)
    signature = [tf.TensorSpec(_tf_shape(s.shape), s.dtype, name=s.name) for s in inputs]

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
        onnx_model, inputs, graph_output_specs(onnx_model), _runner(call, inputs),
        "tensorflow", f"tf2onnx {tf2onnx.__version__} (opset {options.opset})", source, seconds,
    )


def build_application(name: str, overrides: Sequence[InputArg] = ()) -> Any:
    """``keras.applications.NAME`` with no weights and logits out; ``--input`` may set the image size."""
    keras = import_keras()
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
    keras = import_keras()
    return sorted(n for n in dir(keras.applications) if n[:1].isupper() and callable(getattr(keras.applications, n)))


def application_value_range(name: str) -> tuple[float, float] | None:
    return next((r for prefix, r in _APP_VALUE_RANGES if name.startswith(prefix)), None)


def load_keras_file(path: Path) -> Any:
    keras = import_keras()
    if not path.is_file():
        raise BadSourceError(f"{path} does not exist.")
    try:
        return keras.models.load_model(str(path), compile=False)
    except Exception as exc:  # Keras raises ValueError, OSError, h5py and zipfile errors alike
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


def declared_inputs(model: Any) -> list[tuple[str, tuple[int | None, ...], str]]:
    """(name, shape, dtype) of each Keras model input: the input layer's name, valid for TensorFlow.

    Keras numbers auto-named inputs per process (``input_layer_3``), so those become ``input``
    (``input_0``, ``input_1``, ... for several) to keep ONNX names stable across runs.
    """
    tensors = _symbolic(model, "inputs")
    layer_names = [getattr(t, "_keras_history", (None,))[0] for t in tensors]
    names = [_tf_name(op.name if op is not None else t.name) for op, t in zip(layer_names, tensors)]
    names = stable_input_names(names)
    return [(n, tuple(t.shape), str(np.dtype(t.dtype))) for n, t in zip(names, tensors)]


def _declared_from_overrides(model: Any, overrides: Sequence[InputArg]) -> list[tuple[str, tuple, str]]:
    """A subclassed model declares no inputs; ``--input`` has to give them."""
    if not overrides:
        raise OnnxmendError(
            f"Keras model {model.name!r} declares no inputs (a subclassed model); give them with --input NAME:1x224x224x3."
        )
    return [(_tf_name(o.name), (None, *o.shape[1:]), o.dtype) for o in overrides]


def _symbolic(model: Any, attr: str) -> list[Any]:
    """``model.inputs`` / ``model.outputs``, empty for subclassed models, which raise instead."""
    try:
        return list(getattr(model, attr) or [])
    except (AttributeError, ValueError):
        return []


def stable_input_names(names: Sequence[str]) -> list[str]:
    auto = [bool(_AUTO_INPUT_NAME.fullmatch(n)) for n in names]
    renamed = [("input" if len(names) == 1 else f"input_{i}") if a else n for i, (n, a) in enumerate(zip(names, auto))]
    return unique_names(renamed)


def input_specs(
    declared: Sequence[tuple[str, tuple[int | None, ...], str]], overrides: Sequence[InputArg],
    dynamic_batch: bool, value_ranges: Mapping[str, tuple[float, float]],
) -> list[TensorSpec]:
    """One NHWC/NLC TensorSpec per declared input, with ``--input`` shapes and names applied."""
    if overrides and len(overrides) != len(declared):
        raise OnnxmendError(f"The model has {len(declared)} input(s) but {len(overrides)} --input value(s) were given.")
    by_name = {o.name: o for o in overrides}
    specs = []
    for i, (name, model_shape, model_dtype) in enumerate(declared):
        override = by_name.get(name) or (overrides[i] if overrides else None)
        value_range = value_ranges.get(name)
        shape: list[int | str | None] = list(override.shape if override else model_shape)
        if override:
            _check_compatible(name, model_shape, override.shape)
            name = _tf_name(override.name)
        if dynamic_batch:
            shape[0] = "batch"
        elif shape[0] is None:
            shape[0] = 1
        dtype = override.dtype if override else model_dtype
        layout = "NHWC" if len(shape) == 4 else ("NLC" if len(shape) == 3 else "other")
        specs.append(TensorSpec(name, tuple(shape), dtype, layout, value_range))
    return specs


def _check_compatible(name: str, model_shape: tuple, given: tuple) -> None:
    ok = len(model_shape) == len(given) and all(m is None or g is None or m == g for m, g in zip(model_shape, given))
    if not ok:
        shown = "x".join("?" if d is None else str(d) for d in model_shape)
        raise OnnxmendError(f"--input {name} does not fit the model's input shape {shown}.")


def output_names(model: Any) -> list[str]:
    names = getattr(model, "output_names", None) or [t.name for t in _symbolic(model, "outputs")]
    return unique_names([_tf_name(n) for n in names])


def unique_names(names: Sequence[str]) -> list[str]:
    seen: dict[str, int] = {}
    result = []
    for name in names:
        count = seen.get(name, 0)
        seen[name] = count + 1
        result.append(name if count == 0 else f"{name}_{count}")
    return result


def graph_output_specs(model: onnx.ModelProto) -> list[TensorSpec]:
    return [
        TensorSpec(o.name, tuple(d.dim_value or d.dim_param or None for d in o.type.tensor_type.shape.dim))
        for o in model.graph.output
    ]


def keras_runner(model: Any, inputs: Sequence[TensorSpec], out_names: Sequence[str]):
    """Run the untouched model (training=False) on numpy feeds; any batch size."""
    return _runner(lambda *args: _call_model(model, args, out_names), inputs)


def _runner(call: Any, inputs: Sequence[TensorSpec]):
    tf = import_tf()
    signature = [tf.TensorSpec((None, *_tf_shape(s.shape)[1:]), s.dtype, name=s.name) for s in inputs]
    run_fn = tf.function(call, input_signature=signature, autograph=False)

    def run(feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [s.name for s in inputs if s.name not in feeds]
        if missing:
            raise OnnxmendError(f"No value given for model input(s) {', '.join(missing)}.")
        result = run_fn(*[tf.convert_to_tensor(np.asarray(feeds[s.name], dtype=s.dtype)) for s in inputs])
        return {name: value.numpy() for name, value in result.items()}

    return run


def _call_model(model: Any, args: Sequence[Any], out_names: Sequence[str]) -> dict[str, Any]:
    keras = import_keras()
    outputs = model(list(args) if len(args) > 1 else args[0], training=False)
    flat = keras.tree.flatten(outputs)
    # A subclassed model names no outputs before it runs.
    names = out_names or (["output"] if len(flat) == 1 else [f"output_{i}" for i in range(len(flat))])
    return dict(zip(names, flat))


def _tf_shape(shape: Sequence[int | str | None]) -> tuple[int | None, ...]:
    return tuple(d if isinstance(d, int) else None for d in shape)


def _tf_name(name: str) -> str:
    cleaned = _TF_NAME.sub("_", name.split(":")[0]) or "input"
    return cleaned if cleaned[0].isalnum() or cleaned[0] == "." else f"t{cleaned}"
