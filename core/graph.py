"""Graph helpers every floor shares: the one constant reader, the one consumer-rewiring helper, and small
facts about a ModelProto (op histogram, opset).

The onnx-graphsurgeon helpers read or rewire tensors; none of them runs a model.
"""

from __future__ import annotations

import collections
from typing import Iterable, Sequence

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from onnxmend.core.errors import OnnxmendError, first_line
from onnxmend.core.large import CONTROL_FLOW, has_lazy, infer_shapes_in_place, is_large, node_initializers, tensor_bytes
from onnxmend.core.lazy import attach

# ---------------------------------------------------------------------------------------- ModelProto


def op_histogram(model: onnx.ModelProto) -> dict[str, int]:
    return dict(collections.Counter(n.op_type for n in model.graph.node))


def weight_bytes(model: onnx.ModelProto) -> int:
    """Bytes of the model's constant tensors (initializers, those of If/Loop/Scan bodies, and Constant nodes;
    external data included), from their dims and dtypes: cheap, nothing is serialised or copied."""
    tensors = list(model.graph.initializer)
    for node in model.graph.node:
        op = node.op_type
        if op == "Constant":
            tensors += [a.t for a in node.attribute if a.name == "value"]
        elif op in CONTROL_FLOW:
            tensors += list(node_initializers(node))
    return sum(tensor_bytes(t) for t in tensors)


def human_bytes(count: float) -> str:
    """``36.5 KB``, ``3.2 MB``: decimal units, as file sizes are shown."""
    for unit in ("B", "KB", "MB", "GB"):
        if abs(count) < 1000 or unit == "GB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} GB"


def model_opset(model: onnx.ModelProto) -> int:
    """The default-domain opset the model imports (0 when it imports none)."""
    return next((int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def import_graph(model: onnx.ModelProto) -> gs.Graph:
    """graphsurgeon's view of ``model``; a model it cannot import (a dtype it does not know, a tensor it
    cannot read) is one sentence, not a traceback from deep inside the importer."""
    try:
        graph = gs.import_onnx(model)
    except Exception as exc:  # the importer raises its own exception type, KeyError, ValueError, ...
        raise OnnxmendError(f"The graph cannot be read by onnx-graphsurgeon ({type(exc).__name__}: "
                            f"{first_line(exc, 200)}).") from exc
    if has_lazy(model):
        attach(graph)  # weights still in the input's data file are read from there when a pass needs them
    return graph


# --------------------------------------------------------------------------------- graphsurgeon reading


def const_value(tensor: gs.Tensor | None) -> np.ndarray | None:
    """The value of an initializer or of a ``Constant`` node's output; ``None`` for anything computed."""
    if isinstance(tensor, gs.Constant):
        return np.asarray(tensor.values)
    if isinstance(tensor, gs.Variable) and len(tensor.inputs) == 1 and tensor.inputs[0].op == "Constant":
        attrs = tensor.inputs[0].attrs
        if isinstance(attrs.get("value"), gs.Constant):
            return np.asarray(attrs["value"].values)
        for key, dtype in (("value_float", np.float32), ("value_int", np.int64)):
            if key in attrs:
                return np.asarray(attrs[key], dtype=dtype)
        for key, dtype in (("value_floats", np.float32), ("value_ints", np.int64)):
            if key in attrs:
                return np.asarray(list(attrs[key]), dtype=dtype)
    return None


def is_omitted(tensor: gs.Tensor) -> bool:
    """An optional input left out (an empty name)."""
    return isinstance(tensor, gs.Variable) and not tensor.name


def producer(tensor: gs.Tensor, *ops: str) -> gs.Node | None:
    """The node that writes ``tensor`` when its op is one of ``ops`` (any op when none given)."""
    if not isinstance(tensor, gs.Variable) or len(tensor.inputs) != 1:
        return None
    node = tensor.inputs[0]
    return node if not ops or node.op in ops else None


def consumers(tensor: gs.Tensor) -> list[gs.Node]:
    """Distinct consumer nodes (``Mul(d, d)`` lists its node once)."""
    seen: dict[int, gs.Node] = {}
    for node in tensor.outputs:
        seen.setdefault(id(node), node)
    return list(seen.values())


def is_graph_output(graph: gs.Graph, tensor: gs.Tensor) -> bool:
    return any(out is tensor for out in graph.outputs)


def output_ids(graph: gs.Graph) -> set[int]:
    """``id`` of every graph output tensor, for O(1) membership tests in loops over many nodes."""
    return {id(t) for t in graph.outputs}


def attr_ints(node: gs.Node, name: str, default: Iterable[int]) -> list[int]:
    value = node.attrs.get(name)
    return [int(v) for v in value] if value is not None else [int(v) for v in default]


def attr_str(node: gs.Node, name: str, default: str) -> str:
    """A string attribute, decoded (graphsurgeon keeps some as bytes)."""
    value = node.attrs.get(name, default)
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def rank_of(tensor: gs.Tensor) -> int | None:
    shape = tensor.shape
    return None if shape is None else len(shape)


def static_dims(tensor: gs.Tensor, axes: Sequence[int]) -> tuple[int, ...] | None:
    """The sizes of ``axes`` when every one of them is a known positive integer."""
    shape = tensor.shape
    if shape is None:
        return None
    try:
        dims = [shape[a] for a in axes]
    except IndexError:
        return None
    return tuple(int(d) for d in dims) if all(isinstance(d, (int, np.integer)) and d > 0 for d in dims) else None


# -------------------------------------------------------------------------------- graphsurgeon rewiring


def replace_uses(old: gs.Tensor, new: gs.Tensor) -> None:
    """Every consumer of ``old`` reads ``new`` instead (graphsurgeon lists need per-index assignment)."""
    for consumer in list(old.outputs):
        for i, tensor in enumerate(consumer.inputs):
            if tensor is old:
                consumer.inputs[i] = new


def bypass(node: gs.Node, graph_outputs: set[int]) -> bool:
    """Remove a node that passes its first input through unchanged (Identity, an identity Transpose, an
    all-zero Pad): its consumers read its input instead.

    When its output is a graph output, the producer of its input writes that output directly, so the
    output keeps its name; that needs a producer whose output nothing else reads. Returns False (and
    changes nothing) when it cannot be removed.
    """
    source, target = node.inputs[0], node.outputs[0]
    if id(target) not in graph_outputs:
        replace_uses(target, source)
        node.outputs.clear()
        node.inputs.clear()
        return True
    maker = producer(source)
    if maker is None or len(source.outputs) != 1 or id(source) in graph_outputs:
        return False
    maker.outputs[maker.outputs.index(source)] = target
    node.outputs.clear()
    node.inputs.clear()
    return True


def infer_shapes(model: onnx.ModelProto, strict: bool = False) -> onnx.ModelProto:
    """ONNX shape inference with data propagation. Lenient mode never raises: a model inference cannot
    handle comes back as given. Strict mode raises, for gates that must reject an invalid rewrite.

    A large model (:mod:`onnxmend.core.large`: past 1 GiB) is inferred on its skeleton and annotated in
    place, so the model returned is the one given.

    When inference with data propagation raises, inference without it decides: onnx's data propagation
    refuses some valid graphs (onnx 1.23: an Unsqueeze of a constant ``Range`` feeding a broadcast ``Sub``
    is propagated as if still 1-D, "Invalid rank for Sub broadcasting: (4) vs (6)")."""
    try:
        return _infer(model, strict, data_prop=True)
    except Exception:  # inference raises InferenceError, ValidationError, RuntimeError, ...
        try:
            return _infer(model, strict, data_prop=False)
        except Exception:
            if strict:
                raise
            return model


def _infer(model: onnx.ModelProto, strict: bool, data_prop: bool) -> onnx.ModelProto:
    if is_large(model):
        return infer_shapes_in_place(model, strict, data_prop)
    return onnx.shape_inference.infer_shapes(model, check_type=strict, strict_mode=strict, data_prop=data_prop)
