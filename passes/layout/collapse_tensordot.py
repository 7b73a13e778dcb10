"""collapse-tensordot: turn tf2onnx's Tensordot (Reshape to 2-D, MatMul, Reshape back) into one N-D MatMul.

Before (tf2onnx, e.g. a Keras Dense layer on an NHWC tensor)::

    x[1,56,56,96] ─Reshape[3136,96]─ MatMul(W[96,384]) ─Reshape[1,56,56,384]─ y

After::

    x[1,56,56,96] ─ MatMul(W[96,384]) ─ y

MatMul broadcasts over the leading axes, so the product is the same; without the Reshapes,
``push-transposes`` can move Transposes through the MatMul. It runs before ``push-transposes``.

Preconditions: the input shape is static and the weight is a constant matrix. Not handled: Reshapes that
do more than flatten and restore the leading axes, and flattened tensors used elsewhere (the reason is
recorded per node).
"""

from __future__ import annotations

import onnx_graphsurgeon as gs

from onnxmend.core.graph import const_value, output_ids, producer
from onnxmend.passes.infra.base import MatchingPass, PassContext
from onnxmend.passes.infra.naming import Namer


class CollapseTensordot(MatchingPass):
    """tf2onnx's Tensordot is Reshape(x, [M, C]) ─ MatMul(W[C,K]) ─ Reshape([d0..dn, K]); one N-D MatMul is
    the same product without the Reshapes that stop Transposes::

        x[1,56,56,96] ─Reshape[3136,96]─ MatMul(W) ─Reshape[1,56,56,384]─   →   x ─ MatMul(W) ─
    """

    name = "collapse-tensordot"
    fixes = "Turns Reshape-to-2-D, MatMul, Reshape-back (tf2onnx Tensordot) into one N-D MatMul so Transposes pass it."
    preconditions = "The input shape is static and the weight is a constant matrix."

    def anchors(self, graph: gs.Graph) -> list[gs.Node]:
        return [n for n in graph.nodes if n.op == "MatMul"]

    def match(self, graph: gs.Graph, matmul: gs.Node, ctx: PassContext) -> gs.Node | str | None:
        reason = _tensordot_blocker(matmul, output_ids(graph))
        return matmul if reason == "" else reason

    def rewrite(self, graph: gs.Graph, matmul: gs.Node, ctx: PassContext, names: Namer) -> None:
        flatten, unflatten = producer(matmul.inputs[0]), matmul.outputs[0].outputs[0]
        matmul.inputs[0] = flatten.inputs[0]
        matmul.outputs[0] = unflatten.outputs[0]
        unflatten.outputs.clear()


def _tensordot_blocker(matmul: gs.Node, outputs: set[int]) -> str | None:
    """None: not a Tensordot; "": collapsible; otherwise why it is left alone."""
    flatten = producer(matmul.inputs[0])
    after = matmul.outputs[0].outputs
    if flatten is None or flatten.op != "Reshape" or len(after) != 1 or after[0].op != "Reshape":
        return None
    source, weight = flatten.inputs[0], const_value(matmul.inputs[1])
    if weight is None or weight.ndim != 2:
        return "the Tensordot weight is not a constant matrix"
    shape = source.shape
    if shape is None or len(shape) < 3 or not all(isinstance(d, int) and d > 0 for d in shape):
        return "the Tensordot input has no static shape"
    inner = [matmul.inputs[0], matmul.outputs[0]]
    if any(len(t.outputs) != 1 or id(t) in outputs for t in inner):
        return "the flattened tensors of the Tensordot are used elsewhere"
    wanted = list(shape[:-1]) + [int(weight.shape[1])]
    target = const_value(after[0].inputs[1])
    if shape[-1] != weight.shape[0] or target is None or target.reshape(-1).tolist() != wanted:
        return "the Reshapes around the MatMul do more than flatten and restore the leading axes"
    return ""


PASS = CollapseTensordot
