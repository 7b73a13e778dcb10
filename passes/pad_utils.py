"""Helpers shared by the padding passes: reading a Pad, reading pads attributes, evaluating pads subgraphs.

A Pad's ``pads`` can arrive as an initializer, a ``Constant`` node, a small constant subgraph (torch's
``ConstantOfShape → Concat → Reshape → Slice → Transpose → Reshape → Cast``) or a subgraph that reads
the runtime shape (``Shape → Gather → Sub → Div → … → Concat → Cast``). :func:`evaluate_tensor` runs such
a subgraph offline with the ONNX reference evaluator; Shape nodes are fed their static dimensions, and
a dynamic dimension is allowed only when it is provably never read (every reader is a Gather or Slice
with constant indices that touch static dimensions only).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import onnx
import onnx.numpy_helper
import onnx.shape_inference
import onnx_graphsurgeon as gs

log = logging.getLogger(__name__)

CONV_OPS = ("Conv", "ConvTranspose")
POOL_OPS = ("MaxPool", "AveragePool", "LpPool")
# Ops whose output is >= 0 whatever their input (NaN aside, which poisons a max either way).
NON_NEGATIVE_OPS = frozenset({"Relu", "Sigmoid", "Softplus", "Abs", "Exp", "Softmax", "HardSigmoid"})
# Ops that keep every value of a non-negative input non-negative.
NON_NEGATIVE_PRESERVING = frozenset({"Transpose", "Reshape", "Identity", "Flatten", "Squeeze", "Unsqueeze", "MaxPool"})
_NOT_CONSTANT_OPS = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike",
                               "Multinomial", "Bernoulli", "If", "Loop", "Scan"})
MAX_SUBGRAPH_NODES = 256


@dataclass(frozen=True)
class PadSpec:
    """A Pad node read into full-rank form: ``begins[i]``/``ends[i]`` for every axis of the data."""

    mode: str
    begins: tuple[int, ...]
    ends: tuple[int, ...]
    value: float

    @property
    def rank(self) -> int:
        return len(self.begins)


def attr_ints(node: gs.Node, name: str, default: Sequence[int]) -> list[int]:
    value = node.attrs.get(name)
    return [int(v) for v in value] if value is not None else list(default)


def spatial_rank(node: gs.Node) -> int | None:
    """How many spatial axes a Conv/Pool node works on, from whatever attribute or shape says it."""
    kernel = node.attrs.get("kernel_shape")
    if kernel is not None:
        return len(kernel)
    for tensor in node.inputs[:2]:
        if tensor.shape is not None and len(tensor.shape) > 2:
            return len(tensor.shape) - 2
    return None


def kernel_size(node: gs.Node) -> list[int] | None:
    """``kernel_shape`` or, for Conv/ConvTranspose, the weight's spatial dims when they are static."""
    if "kernel_shape" in node.attrs:
        return [int(k) for k in node.attrs["kernel_shape"]]
    if node.op in CONV_OPS and len(node.inputs) > 1:
        shape = node.inputs[1].shape
        if shape is not None and len(shape) > 2 and all(isinstance(d, int) for d in shape[2:]):
            return [int(d) for d in shape[2:]]
    return None


def node_pads(node: gs.Node, rank: int) -> tuple[list[int], list[int]]:
    """Spatial (begins, ends) from a Conv/Pool ``pads`` attribute (all zero when absent)."""
    pads = attr_ints(node, "pads", [0] * (2 * rank))
    return pads[:rank], pads[rank:]


def auto_pad(node: gs.Node) -> str:
    value = node.attrs.get("auto_pad", "NOTSET")
    return value.decode() if isinstance(value, bytes) else str(value)


def constant_array(tensor: gs.Tensor) -> np.ndarray | None:
    """The value of an initializer or of a Constant node's output; None for anything computed."""
    if isinstance(tensor, gs.Constant):
        return np.asarray(tensor.values)
    if len(tensor.inputs) == 1 and tensor.inputs[0].op == "Constant":
        attrs = tensor.inputs[0].attrs
        if "value" in attrs:
            return np.asarray(attrs["value"].values)
        for key in ("value_int", "value_float"):
            if key in attrs:
                return np.asarray(attrs[key])
        for key in ("value_ints", "value_floats"):
            if key in attrs:
                return np.asarray(list(attrs[key]))
    return None


def is_omitted(tensor: gs.Tensor) -> bool:
    return isinstance(tensor, gs.Variable) and not tensor.name


def read_pad(node: gs.Node, opset: int) -> PadSpec | str:
    """A Pad node as a :class:`PadSpec`, or the reason it cannot be read statically."""
    mode = node.attrs.get("mode", "constant")
    mode = mode.decode() if isinstance(mode, bytes) else str(mode)
    if "pads" in node.attrs:  # opset < 11
        pads = np.asarray(node.attrs["pads"], dtype=np.int64)
        value = float(node.attrs.get("value", 0.0))
    else:
        pads = evaluate_tensor(node.inputs[1], opset, allow_shapes=False)
        if isinstance(pads, str):
            return pads
        value_tensor = node.inputs[2] if len(node.inputs) > 2 and not is_omitted(node.inputs[2]) else None
        value_array = constant_array(value_tensor) if value_tensor is not None else np.zeros(())
        if value_array is None:
            return "the pad value is not a constant"
        value = float(np.asarray(value_array).reshape(-1)[0]) if np.asarray(value_array).size else 0.0
    pads = [int(p) for p in np.asarray(pads).reshape(-1)]
    axes_tensor = node.inputs[3] if len(node.inputs) > 3 and not is_omitted(node.inputs[3]) else None
    data_shape = node.inputs[0].shape
    rank = len(data_shape) if data_shape is not None else None
    if axes_tensor is not None:
        axes = constant_array(axes_tensor)
        if axes is None or rank is None:
            return "the Pad axes input is not a constant or the data rank is unknown"
        return _expand_axes(mode, pads, [int(a) % rank for a in axes.reshape(-1)], rank, value)
    half = len(pads) // 2
    if rank is not None and half != rank:
        return f"pads has {len(pads)} values for a rank-{rank} tensor"
    return PadSpec(mode, tuple(pads[:half]), tuple(pads[half:]), value)


def _expand_axes(mode: str, pads: list[int], axes: list[int], rank: int, value: float) -> PadSpec:
    begins, ends = [0] * rank, [0] * rank
    for i, axis in enumerate(axes):
        begins[axis], ends[axis] = pads[i], pads[len(axes) + i]
    return PadSpec(mode, tuple(begins), tuple(ends), value)


def is_non_negative(tensor: gs.Tensor, depth: int = 6) -> bool:
    """True when ``tensor`` is provably >= 0 (produced by Relu, Clip(min >= 0), Sigmoid, ... or a Pad/reshape of such)."""
    const = constant_array(tensor)
    if const is not None:
        return bool(np.all(const >= 0))
    if depth == 0 or len(tensor.inputs) != 1:
        return False
    node = tensor.inputs[0]
    if node.op in NON_NEGATIVE_OPS:
        return True
    if node.op == "Clip":
        return _clip_min(node) is not None and _clip_min(node) >= 0  # type: ignore[operator]
    if node.op in NON_NEGATIVE_PRESERVING:
        return is_non_negative(node.inputs[0], depth - 1)
    if node.op == "Pad":
        spec = node.attrs.get("mode", "constant")
        value = constant_array(node.inputs[2]) if len(node.inputs) > 2 and not is_omitted(node.inputs[2]) else np.zeros(())
        return spec in ("constant", b"constant") and value is not None and bool(np.all(value >= 0)) \
            and is_non_negative(node.inputs[0], depth - 1)
    if node.op in ("Concat", "Max"):
        return all(is_non_negative(t, depth - 1) for t in node.inputs) if node.op == "Concat" \
            else any(is_non_negative(t, depth - 1) for t in node.inputs)
    return False


def _clip_min(node: gs.Node) -> float | None:
    if "min" in node.attrs:  # opset < 11
        return float(node.attrs["min"])
    if len(node.inputs) > 1 and not is_omitted(node.inputs[1]):
        value = constant_array(node.inputs[1])
        return float(value.reshape(-1)[0]) if value is not None and value.size else None
    return None


def evaluate_tensor(tensor: gs.Tensor, opset: int, allow_shapes: bool) -> np.ndarray | str:
    """The value of ``tensor`` computed offline from constants (and static shapes), or why it cannot be."""
    value = constant_array(tensor)
    if value is not None:
        return value
    collected = _collect(tensor, allow_shapes)
    if isinstance(collected, str):
        return collected
    nodes, shape_nodes = collected
    feeds: dict[str, np.ndarray] = {}
    for shape_node in shape_nodes:
        dims = _shape_value(shape_node, nodes)
        if isinstance(dims, str):
            return dims
        feeds[shape_node.outputs[0].name] = dims
    return _run_reference(nodes, shape_nodes, tensor, opset, feeds)


def _collect(tensor: gs.Tensor, allow_shapes: bool) -> tuple[list[gs.Node], list[gs.Node]] | str:
    """Producers of ``tensor`` in topological order, stopping at constants and (when allowed) Shape nodes."""
    order: list[gs.Node] = []
    shapes: list[gs.Node] = []
    seen: set[int] = set()
    stack: list[tuple[gs.Tensor, bool]] = [(tensor, False)]
    while stack:
        current, expanded = stack.pop()
        if constant_array(current) is not None and not (current.inputs and current.inputs[0].op != "Constant"):
            continue
        if not current.inputs:
            return f"the pads depend on the graph input {current.name!r}"
        node = current.inputs[0]
        if expanded:
            order.append(node)
            continue
        if id(node) in seen:
            continue
        seen.add(id(node))
        if node.op == "Shape":
            if not allow_shapes:
                return "the pads are computed from a Shape; fold-dynamic-pad turns them into constants"
            shapes.append(node)
            continue
        if node.op in _NOT_CONSTANT_OPS or (node.domain or "") not in ("", "ai.onnx"):
            return f"the pads subgraph contains {node.op}, which is not evaluated offline"
        if len(seen) > MAX_SUBGRAPH_NODES:
            return f"the pads subgraph has more than {MAX_SUBGRAPH_NODES} nodes"
        stack.append((current, True))
        stack.extend((t, False) for t in node.inputs if not is_omitted(t))
    return order, shapes


def _shape_value(shape_node: gs.Node, subgraph: list[gs.Node]) -> np.ndarray | str:
    """The Shape node's output with dynamic dims set to 1, after proving the subgraph never reads them."""
    shape = shape_node.inputs[0].shape
    source = shape_node.inputs[0].name
    if shape is None:
        return f"the rank of {source!r} is unknown"
    rank = len(shape)
    start = int(shape_node.attrs.get("start", 0)) % (rank + 1) if shape_node.attrs.get("start", 0) < 0 \
        else min(int(shape_node.attrs.get("start", 0)), rank)
    end_attr = shape_node.attrs.get("end", rank)
    end = int(end_attr) + rank if int(end_attr) < 0 else min(int(end_attr), rank)
    dims = list(shape)[start:end]
    dynamic = {i for i, d in enumerate(dims) if not isinstance(d, int) or d < 0}
    if dynamic:
        members = {id(n) for n in subgraph}
        for reader in shape_node.outputs[0].outputs:
            if id(reader) not in members:
                continue
            read = _indices_read(reader, len(dims))
            if read is None or read & dynamic:
                return f"the pads read a dynamic dimension of {source!r}"
    return np.asarray([d if i not in dynamic else 1 for i, d in enumerate(dims)], dtype=np.int64)


def _indices_read(reader: gs.Node, length: int) -> set[int] | None:
    """Which positions of a shape vector a Gather/Slice reads; None when that is not known statically."""
    if reader.op == "Gather" and int(reader.attrs.get("axis", 0)) == 0:
        indices = constant_array(reader.inputs[1])
        return None if indices is None else {int(i) % length for i in indices.reshape(-1)}
    if reader.op == "Slice" and len(reader.inputs) >= 3:
        params = [constant_array(t) for t in reader.inputs[1:]]
        if any(p is None for p in params):
            return None
        starts, ends = params[0], params[1]
        steps = params[3] if len(params) > 3 else np.ones_like(starts)
        return set(range(length)[slice(int(starts[0]), int(ends[0]), int(steps[0]))])
    return None


def _run_reference(
    nodes: list[gs.Node], shape_nodes: list[gs.Node], tensor: gs.Tensor, opset: int, feeds: dict[str, np.ndarray]
) -> np.ndarray | str:
    """Run the collected nodes with the ONNX reference evaluator, built as protos so the graph is not touched."""
    from onnx.reference import ReferenceEvaluator

    leaves: dict[str, np.ndarray] = {}
    protos = []
    for node in nodes:
        for t in node.inputs:
            value = None if is_omitted(t) or t.name in feeds else constant_array(t)
            if value is not None:
                leaves[t.name] = value
        protos.append(_node_proto(node))
    graph = onnx.helper.make_graph(
        protos, "pads",
        [onnx.helper.make_tensor_value_info(name, onnx.TensorProto.INT64, value.shape) for name, value in feeds.items()],
        [onnx.helper.make_tensor_value_info(tensor.name, onnx.TensorProto.UNDEFINED, None)],
        [onnx.numpy_helper.from_array(np.asarray(v), name) for name, v in leaves.items()],
    )
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)])
    try:
        return np.asarray(ReferenceEvaluator(model).run(None, feeds)[0])
    except Exception as exc:  # the reference evaluator raises many types for unsupported cases
        log.debug("evaluating %s failed: %s", tensor.name, exc)
        return f"evaluating the pads subgraph failed ({type(exc).__name__})"


def _node_proto(node: gs.Node) -> onnx.NodeProto:
    attrs = {}
    for key, value in node.attrs.items():
        if isinstance(value, gs.Constant):
            value = onnx.numpy_helper.from_array(np.asarray(value.values))
        elif isinstance(value, np.dtype) or isinstance(value, type):
            value = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(value))
        attrs[key] = value
    return onnx.helper.make_node(
        node.op, [t.name for t in node.inputs], [t.name for t in node.outputs], name=node.name,
        domain=node.domain or "", **attrs,
    )


def refresh_shapes(graph: gs.Graph) -> int:
    """Re-run ONNX shape inference on a copy of ``graph`` and write the shapes it finds back; returns how many."""
    model = gs.export_onnx(graph, do_type_check=False)
    del model.graph.value_info[:]
    try:
        inferred = onnx.shape_inference.infer_shapes(model, data_prop=True)
    except Exception as exc:  # inference raises InferenceError and friends
        log.debug("shape refresh failed: %s", exc)
        return 0
    shapes = {vi.name: _dims(vi) for vi in inferred.graph.value_info}
    updated = 0
    for name, tensor in graph.tensors().items():
        shape = shapes.get(name)
        if isinstance(tensor, gs.Variable) and shape is not None and shape != tensor.shape:
            tensor.shape = shape
            updated += 1
    return updated


def _dims(vi: onnx.ValueInfoProto) -> list[int | str | None] | None:
    tensor_type = vi.type.tensor_type
    if not tensor_type.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None) for d in tensor_type.shape.dim]
