"""remove-neutral-elementwise: ``x + 0``, ``x − 0``, ``x · 1`` and ``x / 1`` are ``x``; the node goes.

Before (Keras' ``Normalization`` layer of EfficientNet with its default mean 0 and variance 1)::

    x[1,224,224,3] ─Add([[[[0,0,0]]]])─ Mul([[[[1,1,1]]]])─ Transpose ─ Conv

After::

    x[1,224,224,3] ─ Transpose ─ Conv

Rules: the constant is all zeros (Add; Sub as the subtrahend) or all ones (Mul; Div as the divisor), and
broadcasting it leaves ``x``'s shape and dtype as they are: each of its dimensions is 1 or equals ``x``'s,
and it has no more dimensions than ``x``. The result is bit-exact except for the sign of a zero
(``−0 + 0 = +0``), which no comparison sees. When the output is a graph output, the producer of ``x``
writes it instead.

Left alone, each with its reason: a constant that would broadcast ``x`` to a larger shape, an output
that is a graph output while ``x`` is a graph input, a constant or read elsewhere. Non-goals: other
algebra (``x · 0``, ``x − x``), non-constant operands.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.core.graph import const_value, consumers, output_ids, producer, replace_uses
from onnxmend.passes.infra.base import MatchingPass, PassContext
from onnxmend.passes.infra.naming import Namer

NEUTRAL = {"Add": (0.0, (0, 1)), "Sub": (0.0, (1,)), "Mul": (1.0, (0, 1)), "Div": (1.0, (1,))}  # value, its slots


@dataclass(frozen=True)
class NeutralOp:
    """``node`` computes ``x`` with a neutral constant."""

    node: gs.Node
    x: gs.Tensor


class RemoveNeutralElementwise(MatchingPass):
    name = "remove-neutral-elementwise"
    fixes = "Removes x+0, x-0, x*1 and x/1 (a zero mean or unit variance left in a normalisation layer)."
    preconditions = "The constant is all 0 (Add/Sub) or all 1 (Mul/Div) and does not broadcast x to a larger shape."

    def anchors(self, graph: gs.Graph) -> list[gs.Node]:
        return [n for n in graph.nodes if n.op in NEUTRAL and len(n.inputs) == 2 and n.outputs]

    def match(self, graph: gs.Graph, node: gs.Node, ctx: PassContext) -> NeutralOp | str | None:
        neutral, slots = NEUTRAL[node.op]
        for slot in slots:
            value = const_value(node.inputs[slot])
            if value is None or value.size == 0 or value.dtype.kind not in "fiu":
                continue
            if value.flat[0] != neutral or not np.all(value == neutral):  # (most constants: their first value)
                continue
            x = node.inputs[1 - slot]
            reason = _broadcast_blocker(x, value.shape) or _output_blocker(graph, node, x)
            return reason or NeutralOp(node, x)
        return None

    def rewrite(self, graph: gs.Graph, match: NeutralOp, ctx: PassContext, names: Namer) -> None:
        out = match.node.outputs[0]
        if id(out) in output_ids(graph):
            maker = producer(match.x)
            maker.outputs[maker.outputs.index(match.x)] = out
        else:
            replace_uses(out, match.x)
        match.node.outputs.clear()


def _broadcast_blocker(x: gs.Tensor, shape: tuple[int, ...]) -> str:
    """Why broadcasting a constant of ``shape`` against ``x`` could change ``x``'s shape."""
    dims = x.shape
    if dims is None:
        return "the input's shape is unknown, so the constant might broadcast it"
    if len(shape) > len(dims):
        return f"the constant has rank {len(shape)}, more than the input's {len(dims)}"
    for c, d in zip(reversed(shape), reversed(dims)):
        if c != 1 and c != d:
            return f"the constant's size {c} would broadcast the input's dimension {d}"
    return ""


def _output_blocker(graph: gs.Graph, node: gs.Node, x: gs.Tensor) -> str:
    outputs = output_ids(graph)
    if id(node.outputs[0]) not in outputs:
        return ""
    if producer(x) is None or id(x) in outputs or len(consumers(x)) != 1:
        return "the output is a graph output and its input is a graph input, a constant or read elsewhere"
    return ""


PASS = RemoveNeutralElementwise
