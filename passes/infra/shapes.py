"""Local shape inference on an onnx-graphsurgeon graph: node by node, without a whole-model round trip.

Whole-model shape inference means exporting the graph and importing it again, which a pipeline can afford
once per round, not after every pass. Two local forms:

- :func:`propagate_shapes` re-infers a node's outputs and walks forward, stopping wherever a shape does not
  get more static. A TF-"same" network from torch's legacy exporter has one shape-computed Pad per conv and
  no shape after the first is known until that Pad's sizes are; fold-dynamic-pad folds them in one sweep
  with this.
- :func:`infer_new` gives the nodes a pass created (outputs without a shape or dtype) theirs, so the passes
  after it in the same round see them.

Both use ``onnx.shape_inference.infer_node_outputs``; small constant inputs (shape vectors, axes) are
passed as data so Reshape/Slice/Pad outputs resolve; weights by type only.
"""

from __future__ import annotations

import logging
from collections import deque

import numpy as np
import onnx
import onnx.defs
import onnx.numpy_helper
import onnx.shape_inference
import onnx_graphsurgeon as gs

from onnxmend.core.graph import const_value, is_omitted

log = logging.getLogger(__name__)

MAX_DATA_ELEMENTS = 64
MAX_VISITS = 100_000


def infer_new(graph: gs.Graph, opset: int) -> int:
    """Infer the outputs of nodes whose outputs lack a shape or dtype, in graph order; returns tensors set."""
    updated = 0
    for node in graph.nodes:
        for t in node.outputs:  # a plain loop: this runs over every node after every pass that changed one
            if t.name and (t.shape is None or t.dtype is None):
                break
        else:
            continue
        for tensor, shape, elem in _infer(node, opset):
            if tensor.shape is None or _more_static(shape, tensor.shape):
                tensor.shape = shape
            if tensor.dtype is None and elem:
                tensor.dtype = onnx.helper.tensor_dtype_to_np_dtype(elem)
            updated += 1
    return updated


def propagate_shapes(start: gs.Node, opset: int) -> int:
    """Re-infer ``start``'s outputs and everything downstream that becomes more static; returns tensors updated."""
    queue: deque[gs.Node] = deque([start])
    updated = visits = 0
    while queue and visits < MAX_VISITS:
        node = queue.popleft()
        visits += 1
        for tensor, shape, elem in _infer(node, opset):
            if _more_static(shape, tensor.shape):
                tensor.shape = shape
                if tensor.dtype is None and elem:
                    tensor.dtype = onnx.helper.tensor_dtype_to_np_dtype(elem)
                updated += 1
                queue.extend(tensor.outputs)
    return updated


def _infer(node: gs.Node, opset: int) -> list[tuple[gs.Tensor, list[int | str | None], int]]:
    if node.domain not in (None, "", "ai.onnx") or any(isinstance(v, gs.Graph) for v in node.attrs.values()):
        return []
    types: dict[str, onnx.TypeProto] = {}
    data: dict[str, onnx.TensorProto] = {}
    for tensor in node.inputs:
        if is_omitted(tensor):
            continue
        if tensor.dtype is None or tensor.shape is None:
            return []
        elem = onnx.helper.np_dtype_to_tensor_dtype(np.dtype(tensor.dtype))
        types[tensor.name] = onnx.helper.make_tensor_type_proto(elem, list(tensor.shape))
        value = const_value(tensor) if _is_small(tensor) else None
        if value is not None:
            data[tensor.name] = onnx.numpy_helper.from_array(np.asarray(value), tensor.name)
    try:
        schema = onnx.defs.get_schema(node.op, opset, "")
        inferred = onnx.shape_inference.infer_node_outputs(
            schema, node_proto(node), types, data, opset_imports=[onnx.helper.make_opsetid("", opset)]
        )
    except Exception as exc:  # inference raises InferenceError, SchemaError and friends
        log.debug("shape propagation stops at %s: %s", node.name, exc)
        return []
    found = []
    for tensor in node.outputs:
        type_proto = inferred.get(tensor.name)
        if type_proto is not None and type_proto.tensor_type.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                    for d in type_proto.tensor_type.shape.dim]
            found.append((tensor, dims, type_proto.tensor_type.elem_type))
    return found


def _is_small(tensor: gs.Tensor) -> bool:
    shape = tensor.shape
    return shape is not None and all(isinstance(d, int) for d in shape) and int(np.prod(shape)) <= MAX_DATA_ELEMENTS


def _more_static(new: list[int | str | None], old: list[int | str | None] | None) -> bool:
    """True when ``new`` knows something ``old`` does not (a rank, or a concrete dim)."""
    if old is None:
        return True
    if len(new) != len(old):
        return False
    static = lambda d: isinstance(d, int) and d >= 0  # noqa: E731
    return any(static(n) and not static(o) for n, o in zip(new, old))


def node_proto(node: gs.Node) -> onnx.NodeProto:
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
