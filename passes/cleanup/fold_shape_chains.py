"""fold-shape-chains: shape-computing chains become constants — the static dimensions they read as
numbers, a Reshape's dynamic ones as ``0`` (copy the input's) or ``-1`` (infer).

Before (torch's legacy exporter, dynamic batch: every ``view`` recomputes its target)::

    h[b,128,512] ─Shape─Gather(0)─Unsqueeze─┐
                       [128]  [8]  [64] ───Concat─┐
    q[b,128,512] ────────────────────────────────Reshape─ [b,128,8,64]

After::

    q ─Reshape([-1,128,8,64])─           (the chain dies with its last reader)

    q[b,t,512] ─Reshape([0,-1,8,64])─    when the target's first size is q's own (same symbol)

and a chain that reads only static dimensions of a partially dynamic tensor (``Shape(x)[1:]`` of
``x[b,3,224,224]``, ``Shape(x, start=2)``) is replaced by its value wherever it leaves the chain.

Rules: the chain is read by :func:`~onnxmend.passes.cleanup.shape_terms.shape_terms` (Shape, Gather,
Slice, Concat, Unsqueeze/Squeeze, Cast, integer arithmetic). A target element is a number when the chain
or shape inference proves it static; ``0`` when it is the Reshape input's own dimension at the same
position (the same symbol), which needs ``allowzero=0`` (set when no element is a literal 0); ``-1``
otherwise, for at most one element (a Reshape infers only one). Equal symbols are equal sizes (ONNX's
meaning of a ``dim_param``). fold-constants runs first: graphsurgeon folds what is wholly static.

Left alone, each with its reason: a Reshape whose target is not a shape chain, two or more elements that
are dynamic and not copies, a copy in a target that also has a literal 0 under ``allowzero=1``.
Non-goals: Expand/Tile/ConstantOfShape targets with dynamic elements (they have no ``-1``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.core.graph import const_value, consumers, output_ids, replace_uses
from onnxmend.passes.cleanup.shape_terms import CHAIN_OPS, Term, dims_of, is_int_vector, shape_terms
from onnxmend.passes.infra.base import MatchingPass, PassContext
from onnxmend.passes.infra.naming import Namer


@dataclass(frozen=True)
class StaticValue:
    """A chain node whose every element is static: its readers outside the chain read ``values``."""

    node: gs.Node
    values: tuple[int, ...]


@dataclass(frozen=True)
class ReshapeTarget:
    """A Reshape whose computed target becomes the constant ``target``."""

    reshape: gs.Node
    target: tuple[int, ...]
    allowzero: int


class FoldShapeChains(MatchingPass):
    name = "fold-shape-chains"
    fixes = ("Replaces Shape→Gather→Unsqueeze→Concat chains by constants: static dims as numbers, a Reshape's "
             "dynamic dims as 0 (copy) or -1 (infer).")
    preconditions = "The chain reads Shape with constant Gather/Slice indices; at most one Reshape dim stays -1."

    def anchors(self, graph: gs.Graph) -> list[gs.Node]:
        return [n for n in graph.nodes if n.outputs and (n.op in CHAIN_OPS or n.op == "Reshape")]

    def match(self, graph: gs.Graph, node: gs.Node, ctx: PassContext) -> StaticValue | ReshapeTarget | str | None:
        out = node.outputs[0]
        if node.op in CHAIN_OPS and is_int_vector(out):
            return _match_static(graph, node)
        if node.op == "Reshape" and const_value(node.inputs[1]) is None:
            return _match_reshape(node)
        return None

    def rewrite(self, graph: gs.Graph, match: StaticValue | ReshapeTarget, ctx: PassContext, names: Namer) -> None:
        if isinstance(match, StaticValue):
            out = match.node.outputs[0]
            values = np.asarray(match.values, dtype=np.dtype(out.dtype)).reshape(out.shape)
            replace_uses(out, gs.Constant(names(f"{out.name}_static"), values))
            return
        reshape = match.reshape
        reshape.inputs[1] = gs.Constant(names(f"{reshape.outputs[0].name}_target"), np.asarray(match.target, np.int64))
        if match.allowzero:
            reshape.attrs["allowzero"] = 1
        else:  # 0 is the default, and before opset 14 the attribute does not exist
            reshape.attrs.pop("allowzero", None)


def _leaves_chain(tensor: gs.Tensor) -> bool:
    """Some reader of ``tensor`` is not a shape-chain op: where a chain's value is used."""
    return any(n.op not in CHAIN_OPS or not is_int_vector(n.outputs[0]) for n in consumers(tensor))


def _match_static(graph: gs.Graph, node: gs.Node) -> StaticValue | None:
    """A chain value with no dynamic element, where it leaves the chain (not a graph output)."""
    out = node.outputs[0]
    if node.op == "Identity" or id(out) in output_ids(graph) or not _leaves_chain(out):
        return None
    if not all(isinstance(d, (int, np.integer)) for d in out.shape):
        return None
    terms = shape_terms(out)
    if terms is None or not all(isinstance(t, int) for t in terms) or len(terms) != int(np.prod(out.shape)):
        return None
    return StaticValue(node, tuple(terms))  # type: ignore[arg-type]


def _match_reshape(reshape: gs.Node) -> ReshapeTarget | str | None:
    terms = shape_terms(reshape.inputs[1])
    if terms is None:
        return "the target shape is not computed by a Shape/Gather/Concat chain"
    if all(isinstance(t, int) for t in terms):
        return None  # the chain's own last node folds (a StaticValue)
    data, out = dims_of(reshape.inputs[0]) or [], dims_of(reshape.outputs[0]) or []
    allowzero = int(reshape.attrs.get("allowzero", 0))
    target = [_element(i, t, data, out) for i, t in enumerate(terms)]
    if target.count(-1) > 1:
        dynamic = sum(1 for t in terms if not isinstance(t, int))
        return (f"{dynamic} target dims are dynamic and {target.count(-1)} of them are not copies of the input's; "
                "a Reshape infers only one (-1)")
    copies = any(t == 0 and not (isinstance(terms[i], int) and terms[i] == 0) for i, t in enumerate(target))
    literal_zero = any(isinstance(t, int) and t == 0 for t in terms)
    if copies and allowzero and literal_zero:
        return "the target has a literal 0 under allowzero=1, so a copied dim cannot be written as 0"
    return ReshapeTarget(reshape, tuple(target), 0 if copies else allowzero)


def _element(i: int, term: Term, data: list[Term], out: list[Term]) -> int:
    """One target element: static number, 0 (the input's own dim i) or -1."""
    if isinstance(term, int):
        return term
    inferred = out[i] if i < len(out) else None
    if isinstance(inferred, int):
        return inferred
    for symbol in (term, inferred):
        if isinstance(symbol, str) and i < len(data) and data[i] == symbol:
            return 0
    return -1


PASS = FoldShapeChains
