"""Keras 3 / tf2onnx workarounds, applied only while the export function is traced.

Two things stop tf2onnx 1.17 from converting Keras 3 models such as ConvNeXt:

* Keras 3's TensorFlow backend runs every *grouped* ``Conv2D`` (``groups > 1``) through a nested
  ``tf.function(jit_compile=True)``, because TF's CPU kernels cannot run grouped convolutions. The nested
  function is marked ``_XlaMustCompile``/``_noinline``, so tf2onnx cannot inline it and leaves an opaque
  ``StatefulPartitionedCall`` node in the ONNX graph. :func:`traceable_keras_ops` swaps the backend's
  ``conv`` for one that emits the plain ``Conv2D`` op (whose grouped kernel tf2onnx turns into
  ``Conv(group=g)``) or ``DepthwiseConv2dNative`` when ``groups == channels``. The math is unchanged; only
  the XLA wrapper is skipped, and only for the graph handed to tf2onnx, never for the source runner.
* Exact GELU traces to ``0.5 * x * Erfc(-x / sqrt(2))`` and ONNX has no ``Erfc``.
  :func:`custom_op_handlers` maps ``Erfc(x)`` to ``Sub(1, Erf(x))``.
* Tensors the traced function captured rather than read from variables (Keras' ``Normalization`` layer
  caches its mean and variance as eager tensors; EfficientNet starts with one) become extra ONNX graph
  *inputs* in tf2onnx. :func:`fold_captured_inputs` turns them back into initializers.

Frameworks are imported through :func:`onnxmend.core.deps.require`.
"""

from __future__ import annotations

import importlib
import logging
import os
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import onnx
import onnx.numpy_helper

from onnxmend.core.deps import require
from onnxmend.core.errors import OnnxmendError, first_line

log = logging.getLogger(__name__)

_KERAS_TF_NN = "keras.src.backend.tensorflow.nn"
_CATCH_ERRORS = "TF2ONNX_CATCH_ERRORS"  # tf2onnx.constants.ENV_TF2ONNX_CATCH_ERRORS


@dataclass
class TraceRewrites:
    """What :func:`traceable_keras_ops` changed while tracing."""

    grouped_convs: int = 0
    depthwise_convs: int = 0


@contextmanager
def traceable_keras_ops() -> Iterator[TraceRewrites]:
    """Within the block, Keras' TF backend emits grouped convolutions without the XLA wrapper."""
    tf = require("tensorflow")
    nn = importlib.import_module(_KERAS_TF_NN)
    original = nn.conv
    rewrites = TraceRewrites()

    def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
        data_format = nn.backend.standardize_data_format(data_format)
        rank = len(inputs.shape)
        channels = inputs.shape[-1]
        grouped = data_format == "channels_last" and rank in (3, 4) and channels != kernel.shape[-2]
        if not grouped:
            return original(inputs, kernel, strides, padding, data_format, dilation_rate)
        return _grouped_conv(tf, inputs, kernel, strides, padding.upper(), dilation_rate, rewrites)

    nn.conv = conv
    try:
        yield rewrites
    finally:
        nn.conv = original


def _grouped_conv(tf: Any, inputs, kernel, strides, padding: str, dilation_rate, rewrites: TraceRewrites):
    """A channels-last grouped convolution as one TF op tf2onnx understands."""
    spatial = len(inputs.shape) - 2
    strides = _tuple(strides, spatial)
    dilations = _tuple(dilation_rate, spatial)
    channels, per_group = int(inputs.shape[-1]), int(kernel.shape[-2])
    depthwise = spatial == 2 and per_group == 1 and not (max(strides) > 1 and max(dilations) > 1)
    if depthwise:
        # Grouped kernel [kh, kw, 1, C*m] -> depthwise [kh, kw, C, m]: output channel c*m + k in both.
        multiplier = int(kernel.shape[-1]) // channels
        dw_kernel = tf.reshape(kernel, (*kernel.shape[:2], channels, multiplier))
        rewrites.depthwise_convs += 1
        return tf.nn.depthwise_conv2d(
            inputs, dw_kernel, strides=(1, *strides, 1), padding=padding, dilations=dilations,
        )
    rewrites.grouped_convs += 1
    # The plain op with a grouped kernel: TF cannot *run* it on CPU, but tracing it is fine and tf2onnx
    # reads the group count from the kernel shape.
    return tf.nn.convolution(inputs, kernel, strides, padding, dilations=dilations)


def _tuple(value, n: int) -> tuple[int, ...]:
    return tuple(int(v) for v in value) if isinstance(value, (tuple, list)) else (int(value),) * n


def _erfc_to_one_minus_erf(ctx, node, name, args) -> None:  # noqa: ARG001  (tf2onnx's handler signature)
    """Erfc(x) -> Sub(1, Erf(x)); Erf is an ONNX op since opset 9."""
    from tf2onnx import utils

    dtype = utils.map_onnx_to_numpy_type(ctx.get_dtype(node.input[0]))
    one = ctx.make_const(utils.make_name(f"{node.name}_one"), np.array(1, dtype=dtype))
    erf = ctx.make_node("Erf", [node.input[0]], op_name_scope=node.name)
    node.type = "Sub"
    ctx.replace_inputs(node, [one.output[0], erf.output[0]])


def custom_op_handlers() -> dict[str, tuple[Callable[..., None], list]]:
    """tf2onnx ``custom_op_handlers`` for TF ops ONNX lacks."""
    return {"Erfc": (_erfc_to_one_minus_erf, [])}


def unknown_ops(model: onnx.ModelProto) -> dict[str, int]:
    """Ops in the default ONNX domain that have no schema at the model's opset, with their counts."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    counts: dict[str, int] = {}
    for node in model.graph.node:
        if node.domain not in ("", "ai.onnx"):
            continue
        try:
            onnx.defs.get_schema(node.op_type, opset, "")
        except onnx.defs.SchemaError:
            counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return counts


def convert_function(function: Any, signature: list[Any], opset: int,
                     what: str) -> tuple[onnx.ModelProto, TraceRewrites]:
    """Trace ``function`` (a ``tf.function``) with the Keras workarounds on and convert it with tf2onnx.

    Raises OnnxmendError when tf2onnx fails or leaves TensorFlow ops that ONNX does not have.
    """
    tf2onnx = require("tf2onnx")
    try:
        with traceable_keras_ops() as rewrites:
            captured = captured_constants(function.get_concrete_function(*signature))
            model = _from_function(tf2onnx, function, signature, opset)
    except Exception as exc:  # tf2onnx raises anything from ValueError to TF internals
        raise OnnxmendError(
            f"tf2onnx could not convert {what} ({type(exc).__name__}: {first_line(exc, 200)})."
        ) from exc
    fold_captured_inputs(model, captured)
    unknown = unknown_ops(model)
    if unknown:
        listed = ", ".join(f"{op} x{n}" for op, n in sorted(unknown.items()))
        hint = (" (a SavedModel keeps Keras' XLA-compiled grouped convolutions; export the .keras file instead)"
                if "StatefulPartitionedCall" in unknown else "")
        raise OnnxmendError(
            f"tf2onnx left TensorFlow ops that ONNX opset {opset} does not have in {what}: {listed}{hint}."
        )
    return model, rewrites


def _from_function(tf2onnx: Any, function: Any, signature: list[Any], opset: int) -> onnx.ModelProto:
    """tf2onnx's conversion with its optimizers unguarded (see :func:`optimizer_without_copies`); when that
    raises, once more the way tf2onnx runs by default, so a failing optimizer is skipped as it always was."""
    kwargs = dict(input_signature=signature, opset=opset, custom_op_handlers=custom_op_handlers())
    try:
        with optimizer_without_copies(), fresh_node_protos():
            return tf2onnx.convert.from_function(function, **kwargs)[0]
    except Exception as exc:  # an optimizer that raises, or any conversion error (raised again below)
        log.warning("tf2onnx failed with its optimizers unguarded (%s); converting again with them guarded",
                    first_line(exc))
        return tf2onnx.convert.from_function(function, **kwargs)[0]


@contextmanager
def optimizer_without_copies() -> Iterator[None]:
    """tf2onnx deep-copies its whole graph, constants included, before each of its ~20 optimizers, every
    round to a fixed point, so that it can drop one that raises: keras:ResNet50 (100 MB of weights) peaked
    at 8.3 GB in tf2onnx's optimizer, VGG16 (0.5 GB) past 12 GB. Its own switch ``TF2ONNX_CATCH_ERRORS``
    turns the copies off; it is set only while one conversion runs."""
    old = os.environ.get(_CATCH_ERRORS)
    os.environ[_CATCH_ERRORS] = "FALSE"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(_CATCH_ERRORS, None)
        else:
            os.environ[_CATCH_ERRORS] = old


@contextmanager
def fresh_node_protos() -> Iterator[None]:
    """tf2onnx's optimizers end with ``Node.update_proto``, which clears a node's NodeProto and extends it
    with the node's attributes again. With protobuf's upb backend the extended copies live in the proto's
    arena and clearing frees nothing, so every optimizer left one more copy of every constant: ResNet50's
    export grew by its 100 MB of weights per optimizer run (24 runs, 2.5 GB). Each update here starts from
    a new NodeProto, so the old one (and its copies) is freed."""
    from tf2onnx import graph as tf2onnx_graph

    original = tf2onnx_graph.Node.update_proto

    def update_proto(self: Any, external_tensor_storage: Any = None) -> Any:
        old = self._op
        self._op = onnx.NodeProto(name=old.name, op_type=old.op_type, domain=old.domain, doc_string=old.doc_string)
        return original(self, external_tensor_storage)

    tf2onnx_graph.Node.update_proto = update_proto
    try:
        yield
    finally:
        tf2onnx_graph.Node.update_proto = original


def captured_constants(concrete_function: Any) -> dict[str, np.ndarray]:
    """Eager tensors a traced function captured (not variables), by the name they have inside the graph.

    Keras layers that cache tensors, e.g. ``Normalization``'s mean and variance, are captured this way.
    """
    tf = require("tensorflow")
    return {
        internal.name: external.numpy() for external, internal in concrete_function.graph.captures
        if external.dtype != tf.resource and hasattr(external, "numpy")
    }


def fold_captured_inputs(model: onnx.ModelProto, captured: dict[str, np.ndarray]) -> int:
    """tf2onnx makes captured tensors graph inputs; turn them into initializers. Returns how many."""
    folded = [vi for vi in model.graph.input if vi.name in captured]
    for vi in folded:
        model.graph.input.remove(vi)
        model.graph.initializer.append(onnx.numpy_helper.from_array(captured[vi.name], vi.name))
    if folded:
        log.info("folded %d captured tensor(s) into initializers: %s", len(folded), [vi.name for vi in folded])
    return len(folded)
