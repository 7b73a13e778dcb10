"""Reading a Pad (:func:`read_pad`) and evaluating its ``pads`` subgraph offline.

torch writes constant pads as ``ConstantOfShape → Concat → Reshape → Slice → Transpose → Reshape → Cast``
and TF-"same" pads as ``Shape → Gather → Sub → Div → … → Concat → Cast``. :func:`evaluate_tensor` runs
such a subgraph with the ONNX reference evaluator, built as separate protos so the graph is untouched.
Shape nodes are fed their static dimensions; a dynamic dimension is allowed only when it is provably never
read (every reader inside the subgraph is a Gather or Slice with constant indices that touch static
dimensions only), and is then fed as 1.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import onnx
import onnx.numpy_helper
import onnx_graphsurgeon as gs

from onnxmend.core.graph import const_value, is_omitted
from onnxmend.passes.infra.shapes import node_proto

log = logging.getLogger(__name__)

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
        value_array = const_value(value_tensor) if value_tensor is not None else np.zeros(())
        if value_array is None:
            return "the pad value is not a constant"
        value = float(np.asarray(value_array).reshape(-1)[0]) if np.asarray(value_array).size else 0.0
    pads = [int(p) for p in np.asarray(pads).reshape(-1)]
    axes_tensor = node.inputs[3] if len(node.inputs) > 3 and not is_omitted(node.inputs[3]) else None
    data_shape = node.inputs[0].shape
    rank = len(data_shape) if data_shape is not None else None
    if axes_tensor is not None:
        axes = const_value(axes_tensor)
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


def evaluate_tensor(tensor: gs.Tensor, opset: int, allow_shapes: bool) -> np.ndarray | str:
    """The value of ``tensor`` computed offline from constants (and static shapes), or why it cannot be."""
    value = const_value(tensor)
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
        if const_value(current) is not None and not (current.inputs and current.inputs[0].op != "Constant"):
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
    # Shape's start/end clamp like Python slice bounds (negative counts from the end).
    dims = list(shape)[int(shape_node.attrs.get("start", 0)):shape_node.attrs.get("end")]
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
        indices = const_value(reader.inputs[1])
        return None if indices is None else {int(i) % length for i in indices.reshape(-1)}
    if reader.op == "Slice" and len(reader.inputs) >= 3:
        params = [const_value(t) for t in reader.inputs[1:]]
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
            value = None if is_omitted(t) or t.name in feeds else const_value(t)
            if value is not None:
                leaves[t.name] = value
        protos.append(node_proto(node))
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
