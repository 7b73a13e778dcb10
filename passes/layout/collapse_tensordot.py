"""collapse-tensordot: turn tf2onnx's Tensordot (Reshape to 2-D, MatMul, Reshape back) into one N-D MatMul.

Before (tf2onnx, e.g. a Keras Dense layer on an NHWC tensor)::

    x[1,56,56,96] ─Reshape[3136,96]─ MatMul(W[96,384]) ─Reshape[1,56,56,384]─ y

After::

    x[1,56,56,96] ─ MatMul(W[96,384]) ─ y

MatMul broadcasts over the leading axes, so the product is the same; without the Reshapes,
``push-transposes`` can move Transposes through the MatMul. It runs before ``push-transposes``.

With a dynamic batch (``--dynamic-batch``) tf2onnx computes both Reshape targets from ``Shape(x)``
(``Gather─ReduceProd─Concat─Cast``), or, once ``fold-shape-chains`` has run, literal targets with a ``-1``
or ``0`` (``[-1, 8, 8, 16]``); :func:`~onnxmend.passes.infra.shape_expr.reshape_target` reads both as
products of x's named dims, and the match holds when the first flattens the leading dims of x and the
second restores exactly them (``[N·H·W, C]`` and ``[N, H, W, K]``). The Shape chains then die with the
Reshapes. ConvNeXtTiny with ``--dynamic-batch``: its 36 Tensordots collapse as with a static batch.

Preconditions: x's last dim is static, the others static or named, and the weight is a constant matrix.
Not handled: Reshapes that do more than flatten and restore the leading axes, and flattened tensors used
elsewhere (the reason is recorded per node).
"""

from __future__ import annotations

import onnx_graphsurgeon as gs

from onnxmend.core.graph import const_value, output_ids, producer
from onnxmend.passes.infra.base import MatchingPass, PassContext
from onnxmend.passes.infra.naming import Namer
from onnxmend.passes.infra.shape_expr import dims_of, product, reshape_target


class CollapseTensordot(MatchingPass):
    """tf2onnx's Tensordot is Reshape(x, [M, C]) ─ MatMul(W[C,K]) ─ Reshape([d0..dn, K]); one N-D MatMul is
    the same product without the Reshapes that stop Transposes::

        x[1,56,56,96] ─Reshape[3136,96]─ MatMul(W) ─Reshape[1,56,56,384]─   →   x ─ MatMul(W) ─
    """

    name = "collapse-tensordot"
    fixes = "Turns Reshape-to-2-D, MatMul, Reshape-back (tf2onnx Tensordot) into one N-D MatMul so Transposes pass it."
    preconditions = "The input's last dim is static (the others static or named) and the weight is a constant matrix."

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
    dims = dims_of(source.shape)
    if dims is None or len(dims) < 3 or dims[-1][1] or any(c <= 0 for c, _ in dims):
        return "the Tensordot input's shape is unknown (a dim that is neither a number nor named) or its last dim is dynamic"
    inner = [matmul.inputs[0], matmul.outputs[0]]
    if any(len(t.outputs) != 1 or id(t) in outputs for t in inner):
        return "the flattened tensors of the Tensordot are used elsewhere"
    channels, k = dims[-1][0], int(weight.shape[1])
    flat = reshape_target(flatten, dims)
    restored = reshape_target(after[0], [product(dims[:-1]), (k, ())])
    if flat is None or restored is None:
        return "the Tensordot's Reshape targets are computed in a way this pass cannot read"
    if channels != weight.shape[0] or flat != [product(dims[:-1]), (channels, ())] or restored != dims[:-1] + [(k, ())]:
        return "the Reshapes around the MatMul do more than flatten and restore the leading axes"
    return ""


PASS = CollapseTensordot
