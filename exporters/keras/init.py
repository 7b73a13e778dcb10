"""Realistic random weights for Keras models, so parity checks on random-weight models mean something.

Keras' own initializers give ``keras.applications`` models degenerate outputs without trained weights:
MobileNetV2's logits come out around 1e-11 (BN moving statistics 0/1 against activations that shrink
layer by layer), and ConvNeXt's LayerScale (initialised to 1e-6) mutes every residual branch, so any
converter "matches" them. :func:`realistic_random_init` draws weights that keep activations O(1):

* conv / dense kernels: He-normal, ``std = sqrt(2 / fan_in)`` (fan-in per group for grouped and
  depthwise kernels); biases ``N(0, 0.05)``;
* BatchNormalization / LayerNormalization / GroupNormalization: gamma ``U(0.5, 1.5)``, beta ``N(0, 0.1)``;
* LayerScale weights (any layer class named ``*LayerScale*``, and ``gamma`` weights of non-norm layers):
  ``U(0.05, 0.5)``;
* BatchNormalization moving mean / variance: the batch statistics of a seeded calibration batch, taken
  layer by layer in one inference-mode pass (each BN sees inputs already normalised by the BNs before
  it), so every BN output is standardised through the depth of the network.

Other weights (``Normalization`` layers' mean/variance, embeddings, ...) keep their values.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from onnxmend.core.deps import require
from onnxmend.core.errors import OnnxmendError

log = logging.getLogger(__name__)

CALIBRATION_BATCH = 4
# Keras keeps every activation of a functional graph's run until it ends: past this many input values
# (four 224x224 RGB images) the calibration batch shrinks, down to 1 (keras:EfficientNetB7 at 600x600: a
# batch of 4 held 10 GB of activations).
CALIBRATION_VALUES = CALIBRATION_BATCH * 224 * 224 * 3
_DRAW_CHUNK = 1 << 20
_ASSIGN_BLOCK = 16 << 20
_NORM_LAYERS = ("BatchNormalization", "LayerNormalization", "GroupNormalization", "RMSNormalization")


@dataclass
class InitReport:
    """What :func:`realistic_random_init` set."""

    kernels: int = 0
    biases: int = 0
    norm_affines: int = 0
    layer_scales: int = 0
    batch_norms_calibrated: int = 0
    calibration: str = "none"  # "graph" (exact, layer by layer), "training-pass" or "none"

    def __str__(self) -> str:
        calibrated = {"graph": "from batch statistics, layer by layer", "training-pass": "from one training pass"}
        return (
            f"{self.kernels} kernels, {self.biases} biases, {self.norm_affines} norm affines, "
            f"{self.layer_scales} LayerScales randomised; {self.batch_norms_calibrated} BatchNorm statistics "
            + calibrated.get(self.calibration, "left as initialised")
        )


def realistic_random_init(
    model: Any, seed: int, calibration: Sequence[np.ndarray] | None = None,
    value_range: tuple[float, float] | None = None,
) -> InitReport:
    """Overwrite ``model``'s weights in place with seeded, activation-preserving random values.

    ``calibration`` is one batch per model input for the BatchNormalization statistics; by default a
    seeded batch of ``CALIBRATION_BATCH`` (fewer for big inputs, see :data:`CALIBRATION_VALUES`) drawn from
    ``value_range`` (standard normal when ``None``).
    """
    rng = np.random.default_rng(seed)
    report = InitReport()
    for layer in _leaf_layers(model):
        _init_layer(layer, rng, report)
    if any(type(layer).__name__ == "BatchNormalization" for layer in _leaf_layers(model)):
        batch = list(calibration) if calibration is not None else _calibration_batch(model, rng, value_range)
        _calibrate_batch_norms(model, batch, report)
    log.info("realistic random init (seed %d): %s", seed, report)
    return report


def _leaf_layers(model: Any) -> list[Any]:
    return [layer for layer in model._flatten_layers(include_self=False, recursive=True)
            if not getattr(layer, "_layers", None)]


def _init_layer(layer: Any, rng: np.random.Generator, report: InitReport) -> None:
    kind = type(layer).__name__
    for var in layer.weights:
        name = var.name.split("/")[-1].split(":")[0]
        shape = tuple(int(d) for d in var.shape)
        if kind in _NORM_LAYERS and name == "gamma":
            draw, report.norm_affines = (rng.uniform, 0.5, 1.5), report.norm_affines + 1
        elif kind in _NORM_LAYERS and name == "beta":
            draw = (rng.normal, 0.0, 0.1)
        elif "LayerScale" in kind or (kind not in _NORM_LAYERS and name == "gamma"):
            draw, report.layer_scales = (rng.uniform, 0.05, 0.5), report.layer_scales + 1
        elif name.endswith("kernel") and len(shape) >= 2:
            draw = (rng.normal, 0.0, math.sqrt(2.0 / _fan_in(kind, name, shape)))
            report.kernels += 1
        elif name == "bias":
            draw, report.biases = (rng.normal, 0.0, 0.05), report.biases + 1
        else:
            continue
        _assign(var, *draw, shape, np.dtype(var.dtype))


def _assign(var: Any, sample: Callable[..., np.ndarray], a: float, b: float, shape: tuple[int, ...],
            dtype: np.dtype) -> None:
    """Draw ``var``'s values and assign them; a big variable block of rows by block of rows (the same values,
    drawn in the same order), so that neither the whole array nor its tensor copy is ever held (VGG16's fc1,
    411 MB, took three times that on top of the model; by blocks, one copy of it, which TensorFlow makes for a
    sliced assignment, so the blocks are large: 16M values)."""
    rows = max(1, _ASSIGN_BLOCK // max(1, math.prod(shape[1:]))) if shape else 0
    target = getattr(var, "_value", None)  # the backend's variable, which takes sliced assignments
    if not shape or shape[0] <= rows or not hasattr(target, "__getitem__"):
        var.assign(_drawn(sample, a, b, shape, dtype))
        return
    for start in range(0, shape[0], rows):
        stop = min(shape[0], start + rows)
        target[start:stop].assign(_drawn(sample, a, b, (stop - start, *shape[1:]), dtype))


def _drawn(sample: Callable[..., np.ndarray], a: float, b: float, shape: tuple[int, ...],
           dtype: np.dtype) -> np.ndarray:
    """``sample(a, b, shape)`` cast to ``dtype``, drawn in chunks: the same values as one float64 draw, without
    its float64 copy (VGG16's 411 MB fc1 kernel needed 822 MB more for it)."""
    out = np.empty(shape, dtype)
    flat = out.reshape(-1)
    for start in range(0, flat.size, _DRAW_CHUNK):
        stop = min(flat.size, start + _DRAW_CHUNK)
        flat[start:stop] = sample(a, b, stop - start)
    return out


def _fan_in(kind: str, name: str, shape: tuple[int, ...]) -> int:
    if name == "depthwise_kernel":  # [*k, C, multiplier]: each output sees one channel
        return max(1, math.prod(shape[:-2]))
    if "Transpose" in kind:  # [*k, out, in]
        return max(1, math.prod(shape[:-2]) * shape[-1])
    return max(1, math.prod(shape[:-1]))  # [*k, in/groups, out] or [in, out]


def _calibration_batch(model: Any, rng: np.random.Generator, value_range) -> list[np.ndarray]:
    try:
        tensors = list(model.inputs)
    except (AttributeError, ValueError) as exc:  # subclassed models have no symbolic inputs
        raise OnnxmendError(
            f"Keras model {model.name!r} declares no inputs; pass calibration batches to realistic_random_init."
        ) from exc
    samples = [tuple(d if d is not None else 32 for d in tensor.shape[1:]) for tensor in tensors]
    per_sample = max(1, sum(math.prod(s) for s in samples))
    size = max(1, min(CALIBRATION_BATCH, CALIBRATION_VALUES // per_sample))
    batch = []
    for tensor, sample in zip(tensors, samples):
        shape = (size, *sample)
        if value_range is None:
            values = rng.standard_normal(shape)
        else:
            values = rng.uniform(value_range[0], value_range[1], shape)
        batch.append(values.astype(np.dtype(tensor.dtype)))
    return batch


def _calibrate_batch_norms(model: Any, batch: list[np.ndarray], report: InitReport) -> None:
    tf = require("tensorflow")
    inputs = [tf.convert_to_tensor(x) for x in batch]
    if hasattr(model, "_run_through_graph") and getattr(model, "_nodes_by_depth", None):
        _run_calibrating(model, inputs, report)
        report.calibration = "graph"
        return
    functional = getattr(model, "_functional", None)  # a built Sequential keeps its graph here
    if functional is not None:
        _run_calibrating(functional, inputs, report)
        report.calibration = "graph"
        return
    _training_pass(model, inputs, report)


def _run_calibrating(graph_model: Any, inputs: list[Any], report: InitReport) -> Any:
    """Run a functional model once in inference mode, fixing each BN's statistics just before it runs."""
    return graph_model._run_through_graph(inputs, operation_fn=lambda op: _calibrating_call(op, report))


def _calibrating_call(op: Any, report: InitReport) -> Callable[..., Any]:
    if getattr(op, "_nodes_by_depth", None) and hasattr(op, "_run_through_graph"):
        return lambda *args, **kwargs: _run_calibrating(op, _flat(args), report)

    def call(*args: Any, **kwargs: Any) -> Any:
        if type(op).__name__ == "BatchNormalization":
            _set_batch_statistics(op, args[0])
            report.batch_norms_calibrated += 1
        if "training" in getattr(op, "_call_context_args", ()):
            kwargs["training"] = False
        return op(*args, **kwargs)

    return call


def _flat(args: tuple[Any, ...]) -> list[Any]:
    keras = require("keras")
    return list(keras.tree.flatten(args))


def _set_batch_statistics(layer: Any, x: Any) -> None:
    tf = require("tensorflow")
    axis = layer.axis if isinstance(layer.axis, int) else layer.axis[0]
    axis = axis % len(x.shape)
    reduce_axes = [i for i in range(len(x.shape)) if i != axis]
    mean, variance = tf.nn.moments(tf.cast(x, tf.float32), axes=reduce_axes)
    layer.moving_mean.assign(tf.cast(mean, layer.moving_mean.dtype))
    layer.moving_variance.assign(tf.cast(variance, layer.moving_variance.dtype))


def _training_pass(model: Any, inputs: list[Any], report: InitReport) -> None:
    """Subclassed models have no graph to walk: one training-mode pass with momentum 0 sets the statistics.

    Training mode also turns on dropout-like layers, so these statistics carry their noise.
    """
    norms = [layer for layer in _leaf_layers(model) if type(layer).__name__ == "BatchNormalization"]
    momenta = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0
    try:
        model(inputs if len(inputs) > 1 else inputs[0], training=True)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum
    report.batch_norms_calibrated = len(norms)
    report.calibration = "training-pass"
