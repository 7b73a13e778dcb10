"""collapse-reshapes: a chain of Squeeze/Unsqueeze/Reshape/Flatten becomes one Reshape, or nothing when
it gives the tensor back its own shape.

Before (tf2onnx's squeeze-excite block: Keras' ``GlobalAveragePooling2D`` then ``Reshape((1, 1, C))``)::

    x ─GlobalAveragePool─ [1,32,1,1] ─Squeeze(2,3)─ [1,32] ─Reshape([1,32,1,1])─ [1,32,1,1] ─Conv

    s[b,16] ─Unsqueeze(-1)─ [b,16,1] ─Unsqueeze(-1)─ [b,16,1,1] ─Mul     (torch's ``s[..., None, None]``)

After::

    x ─GlobalAveragePool─ [1,32,1,1] ─Conv                (the chain was the identity)

    s[b,16] ─Reshape([0,16,1,1])─ [b,16,1,1] ─Mul         (one node: static sizes, 0 copies ``b``)

A single Squeeze/Unsqueeze/Reshape/Flatten that gives back its input's shape (a Reshape to the shape the
tensor already has) is removed too. The chain's end is rewritten to read the chain's start; links that
another node also reads stay for it.

Rules: shapes come from shape inference. Two shapes are equal when every dimension is the same number or
the same symbol (ONNX's meaning of a ``dim_param``). The new target holds each static size, ``0`` where the
output keeps the input's dimension at the same position (the same symbol), and ``-1`` for at most one
other dimension; failing that, a last Reshape's own constant target without ``0`` entries is used.

Left alone, each with its reason: chains whose output shape has two or more dynamic dimensions that are not
copies, zero-size dimensions (``0`` would mean "copy"). An identity chain ending in a graph output goes only
when the source's producer can write that output (else it becomes one Reshape). Non-goals: Transpose in the chain (push-transposes owns Transposes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.core.graph import const_value, consumers, output_ids, producer, replace_uses
from onnxmend.passes.cleanup.shape_terms import Term, dims_of
from onnxmend.passes.infra.base import MatchingPass, PassContext
from onnxmend.passes.infra.naming import Namer

FAMILY = frozenset({"Reshape", "Squeeze", "Unsqueeze", "Flatten"})


@dataclass(frozen=True)
class ReshapeChain:
    """``end`` and the links before it, read from ``source``: one Reshape to ``target``, or none (``None``)."""

    end: gs.Node
    source: gs.Tensor
    length: int
    target: tuple[int, ...] | None


class CollapseReshapes(MatchingPass):
    name = "collapse-reshapes"
    fixes = "Collapses Squeeze/Unsqueeze/Reshape/Flatten chains into one Reshape, or removes them when they give back the input's shape."
    preconditions = "Shapes known from shape inference; at most one dynamic output dim that is not a copy."

    def anchors(self, graph: gs.Graph) -> list[gs.Node]:
        outputs = output_ids(graph)
        return [n for n in graph.nodes if n.op in FAMILY and n.outputs and _chain_end(n, outputs)]

    def match(self, graph: gs.Graph, node: gs.Node, ctx: PassContext) -> ReshapeChain | str | None:
        links = _links(node)
        source, out = links[-1].inputs[0], node.outputs[0]
        src_dims, out_dims = dims_of(source), dims_of(out)
        if src_dims is None or out_dims is None:
            return "the chain's input or output shape is unknown" if len(links) > 1 else None
        if _same_shape(src_dims, out_dims) and _removable(graph, source, out):
            return ReshapeChain(node, source, len(links), None)
        if len(links) == 1:
            return None  # one link that changes the shape: nothing to collapse
        target = _target(src_dims, out_dims) or _own_target(node)
        if isinstance(target, str):
            return target
        return ReshapeChain(node, source, len(links), target)

    def rewrite(self, graph: gs.Graph, match: ReshapeChain, ctx: PassContext, names: Namer) -> None:
        end, out = match.end, match.end.outputs[0]
        if match.target is None and id(out) not in output_ids(graph):
            replace_uses(out, match.source)
            end.outputs.clear()
            return
        if match.target is None:  # the identity ends in a graph output: the source's producer writes it
            maker = producer(match.source)
            maker.outputs[maker.outputs.index(match.source)] = out
            end.outputs.clear()
            return
        end.op, end.attrs = "Reshape", {}
        target = gs.Constant(names(f"{out.name}_shape"), np.asarray(match.target, np.int64))
        end.inputs.clear()
        end.inputs.extend([match.source, target])


def _chain_end(node: gs.Node, graph_outputs: set[int]) -> bool:
    """The chain goes on only through a single reader that is itself a link."""
    out = node.outputs[0]
    readers = consumers(out)
    return id(out) in graph_outputs or len(readers) != 1 or readers[0].op not in FAMILY


def _links(end: gs.Node) -> list[gs.Node]:
    """``end`` and the links before it, back to the first whose input no link writes."""
    links = [end]
    while (before := producer(links[-1].inputs[0], *FAMILY)) is not None and len(links) < 64:
        links.append(before)
    return links


def _removable(graph: gs.Graph, source: gs.Tensor, out: gs.Tensor) -> bool:
    """An identity chain can go: its output is no graph output, or the source's producer can write it."""
    outputs = output_ids(graph)
    if id(out) not in outputs:
        return True
    return producer(source) is not None and id(source) not in outputs and len(consumers(source)) == 1


def _same_shape(a: list[Term], b: list[Term]) -> bool:
    return len(a) == len(b) and all(x == y and x is not None for x, y in zip(a, b))


def _target(src: list[Term], out: list[Term]) -> tuple[int, ...] | None:
    """The output's shape as a Reshape target relative to ``src``, or None when it cannot be written."""
    target = []
    for i, dim in enumerate(out):
        if isinstance(dim, int):
            if dim == 0:
                return None  # a zero-size dim would read as "copy"
            target.append(dim)
        else:
            target.append(0 if i < len(src) and src[i] == dim else -1)
    return tuple(target) if target.count(-1) <= 1 else None


def _own_target(end: gs.Node) -> tuple[int, ...] | str:
    """The last Reshape's own constant target, when it reads nothing of its input's shape."""
    value = const_value(end.inputs[1]) if end.op == "Reshape" else None
    if value is None or 0 in value.reshape(-1):
        return ("the chain's output has several dynamic dims that are not copies of its input's, and it does "
                "not end in a Reshape with a constant target")
    return tuple(int(v) for v in value.reshape(-1))


PASS = CollapseReshapes
