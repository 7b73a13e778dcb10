"""eliminate-common-subexpressions: two nodes with the same op, attributes and inputs compute the same
thing; the second goes and its readers read the first.

Before (torch's legacy exporter: every ``view`` of one tensor asks for its shape again)::

    h ─Shape─Gather(0)─Unsqueeze─ … ─Reshape(q)
    h ─Shape─Gather(0)─Unsqueeze─ … ─Reshape(k)
    h ─Shape─Gather(0)─Unsqueeze─ … ─Reshape(v)

After::

    h ─Shape─Gather(0)─Unsqueeze─┬─ … ─Reshape(q)
                                 ├─ … ─Reshape(k)
                                 └─ … ─Reshape(v)

Rules: nodes are visited in graph (topological) order, so a chain of duplicates collapses in one sweep.
Inputs are the same when they are the same tensor: dedupe-initializers runs first, so equal constants are
one initializer. Attributes compare by value (tensor attributes by dtype, shape and bytes). When the
duplicate writes a graph output and the first does not, the duplicate is kept instead.

Left alone, each with its reason: both nodes write graph outputs. Never merged: random ops (RandomNormal,
RandomUniform, Bernoulli, Multinomial and their ``*Like`` forms), nodes with subgraphs (If/Loop/Scan).
Its matcher is a dry run on a copy of the graph (a merge makes the next duplicates visible).
"""

from __future__ import annotations

import hashlib
from typing import Hashable

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.core.graph import output_ids, replace_uses
from onnxmend.passes.infra.base import Pass, PassContext, PassResult

RANDOM_OPS = frozenset({"RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Bernoulli",
                        "Multinomial"})


class EliminateCommonSubexpressions(Pass):
    name = "eliminate-common-subexpressions"
    fixes = "Merges nodes that have the same op, attributes and inputs (repeated Shape chains, duplicated branches)."
    preconditions = "Not a random op, no subgraph attribute; at most one of the two writes graph outputs."

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        result = PassResult()
        outputs = output_ids(graph)
        # Nodes by op and inputs; their attributes are compared (and keyed) only where two share those.
        seen: dict[Hashable, list[_Seen]] = {}
        for node in list(graph.nodes):
            key = op_and_inputs(node)
            if key is None or not node.outputs:
                continue
            bucket = seen.get(key)
            if bucket is None:  # (most nodes: the first with their op and inputs)
                seen[key] = [_Seen(node)]
                continue
            mine = _Seen(node)
            first = next((s for s in bucket if s.attrs() is not None and s.attrs() == mine.attrs()), None)
            if first is None:
                bucket.append(mine)
                continue
            keep, drop = first.node, node
            if _writes_output(node, outputs) and not _writes_output(first.node, outputs):
                keep, drop = node, first.node  # the graph output keeps its producer
            if _writes_output(drop, outputs):
                result.skip(node, f"it duplicates {first.node.name or first.node.op}, and both write graph outputs")
                continue
            for old, new in zip(drop.outputs, keep.outputs):
                replace_uses(old, new)
            drop.outputs.clear()
            drop.inputs.clear()
            first.node = keep
            result.changed += 1
        return result


def _writes_output(node: gs.Node, graph_outputs: set[int]) -> bool:
    return any(id(t) in graph_outputs for t in node.outputs)


def op_and_inputs(node: gs.Node) -> Hashable | None:
    """Op, domain, input tensors and output count: what two nodes that compute the same values share
    before their attributes are compared; None for a node that is never merged."""
    if node.op in RANDOM_OPS:
        return None
    inputs = tuple([id(t) if t.name else "" for t in node.inputs])
    return (node.op, node.domain or "", inputs, len(node.outputs))


def attributes_key(node: gs.Node) -> Hashable | None:
    """The node's attributes by value; None for a node with a subgraph, which is never merged."""
    attrs = []
    for name, value in sorted(node.attrs.items()):
        if isinstance(value, gs.Graph):
            return None
        attrs.append((name, _attr_key(value)))
    return tuple(attrs)


class _Seen:
    """A node kept for comparison, its attributes keyed on first use (most nodes never need them)."""

    _UNKEYED = object()

    def __init__(self, node: gs.Node) -> None:
        self.node, self._attrs = node, self._UNKEYED

    def attrs(self) -> Hashable | None:
        if self._attrs is self._UNKEYED:
            self._attrs = attributes_key(self.node)
        return self._attrs


def _attr_key(value: object) -> Hashable:
    if isinstance(value, gs.Constant):
        values = np.asarray(value.values)
        return ("tensor", str(values.dtype), values.shape, hashlib.sha1(values.tobytes()).hexdigest())
    if isinstance(value, np.ndarray):
        return ("array", str(value.dtype), value.shape, value.tobytes())
    if isinstance(value, (list, tuple)):
        return tuple(_attr_key(v) for v in value)
    if isinstance(value, float) and value != value:
        return ("nan",)
    return value if isinstance(value, Hashable) else repr(value)


PASS = EliminateCommonSubexpressions
