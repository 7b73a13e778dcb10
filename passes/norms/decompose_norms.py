"""Decompose LayerNormalization, GroupNormalization and InstanceNormalization into opset-13 primitives.

Before::

    x ─LayerNormalization(axis, epsilon)(γ, β)─ y

After (ReduceMean takes ``axes`` as an attribute below opset 18 and as an input from 18 on)::

    x ─ReduceMean(axes)─┐
    x ─────────────────Sub─ d ─Mul d·d─ReduceMean─Add eps─Sqrt─┐
                           d ─────────────────────────────────Div─ Mul γ ─ Add β ─ y

GroupNormalization reshapes to [N, G, -1] first and back to ``Shape(x)`` after (per-channel γ/β from
opset 21, per-group before); InstanceNormalization normalizes over the spatial axes with γ/β shaped
[C, 1, ..]. Float16/bfloat16 LayerNorms with ``stash_type=1`` compute the statistics between Casts to
float32, as the operator's own function body does. For old-opset targets and converters that lack the
fused operators; the ``portable`` preset runs it after the fusions, so every norm is decomposed alike.

Not handled (skipped with a reason): unknown input rank, LayerNormalization Mean/InvStdDev outputs in
use (read by a node or graph outputs), non-constant InstanceNormalization/GroupNormalization scale or bias.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from onnxmend.core.graph import const_value, is_graph_output, rank_of
from onnxmend.passes.infra.base import MatchingPass, PassContext
from onnxmend.passes.infra.match import is_low_precision, tensor_dtype
from onnxmend.passes.infra.naming import Namer
from onnxmend.passes.norms.emitter import Emitter

NORM_OPS = ("LayerNormalization", "GroupNormalization", "InstanceNormalization")


class DecomposeNorms(MatchingPass):
    name = "decompose-norms"
    fixes = "Rewrites LayerNormalization/GroupNormalization/InstanceNormalization as ReduceMean/Sub/Mul/Add/Sqrt/Div."
    preconditions = "known input rank; constant scale/bias for Group/InstanceNormalization."

    def anchors(self, graph: gs.Graph) -> list[gs.Node]:
        return [n for n in graph.nodes if n.op in NORM_OPS and n.domain in ("", "ai.onnx", None)]

    def match(self, graph: gs.Graph, node: gs.Node, ctx: PassContext) -> gs.Node | str:
        return _blocker(graph, node) or node

    def rewrite(self, graph: gs.Graph, node: gs.Node, ctx: PassContext, names: Namer) -> None:
        emit = Emitter(graph, names, node.name or node.op, int(graph.opset or ctx.opset))
        {"LayerNormalization": _layer_norm, "GroupNormalization": _group_norm,
         "InstanceNormalization": _instance_norm}[node.op](emit, node)
        node.inputs.clear()
        node.outputs.clear()


def _blocker(graph: gs.Graph, node: gs.Node) -> str:
    if rank_of(node.inputs[0]) is None:
        return f"the rank of {node.inputs[0].name} is unknown"
    if node.op == "LayerNormalization" and any(t.outputs or is_graph_output(graph, t) for t in node.outputs[1:]):
        return "its Mean/InvStdDev outputs are in use"
    if node.op != "LayerNormalization" and any(const_value(t) is None for t in node.inputs[1:3]):
        return "its scale or bias is not a constant"
    return ""


def _layer_norm(emit: Emitter, node: gs.Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    rank = rank_of(x)
    axis = int(node.attrs.get("axis", -1)) % rank
    dtype = tensor_dtype(x) or np.dtype(np.float32)
    src, work = x, dtype
    if is_low_precision(x) and int(node.attrs.get("stash_type", 1)) == 1:
        work = np.dtype(np.float32)
        src = emit.op("Cast", [x], work, to=onnx.TensorProto.FLOAT)
    normalized = emit.normalize(src, list(range(axis, rank)), float(node.attrs.get("epsilon", 1e-5)), work)
    if src is not x:
        normalized = emit.op("Cast", [normalized], dtype, to=onnx.helper.np_dtype_to_tensor_dtype(dtype))
    has_bias = len(node.inputs) > 2 and node.inputs[2].name
    scaled = emit.op("Mul", [normalized, node.inputs[1]], dtype, out=None if has_bias else out)
    if has_bias:
        emit.op("Add", [scaled, node.inputs[2]], dtype, out=out)


def _instance_norm(emit: Emitter, node: gs.Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    rank = rank_of(x)
    dtype = tensor_dtype(x) or np.dtype(np.float32)
    normalized = emit.normalize(x, list(range(2, rank)), float(node.attrs.get("epsilon", 1e-5)), dtype)
    _affine(emit, normalized, node, (-1,) + (1,) * (rank - 2), dtype, out)


def _group_norm(emit: Emitter, node: gs.Node) -> None:
    x, out = node.inputs[0], node.outputs[0]
    rank = rank_of(x)
    dtype = tensor_dtype(x) or np.dtype(np.float32)
    groups = int(node.attrs["num_groups"])
    grouped = emit.op("Reshape", [x, emit.const("grouped_shape", np.asarray([0, groups, -1], np.int64))], dtype)
    normalized = emit.normalize(grouped, [2], float(node.attrs.get("epsilon", 1e-5)), dtype)
    if emit.opset < 21:  # GroupNormalization-18: scale and bias are per group
        normalized = _affine(emit, normalized, node, (-1, 1), dtype, None)
        emit.op("Reshape", [normalized, emit.op("Shape", [x], np.int64)], dtype, out=out)
        return
    restored = emit.op("Reshape", [normalized, emit.op("Shape", [x], np.int64)], dtype)
    _affine(emit, restored, node, (-1,) + (1,) * (rank - 2), dtype, out)


def _affine(emit: Emitter, normalized: gs.Variable, node: gs.Node, shape: tuple[int, ...], dtype, out) -> gs.Variable:
    scale = emit.const("scale", const_value(node.inputs[1]).reshape(shape).astype(dtype))
    bias = emit.const("bias", const_value(node.inputs[2]).reshape(shape).astype(dtype))
    return emit.op("Add", [emit.op("Mul", [normalized, scale], dtype), bias], dtype, out=out)


PASS = DecomposeNorms
