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
        seen: dict[Hashable, gs.Node] = {}
        for node in list(graph.nodes):
            key = node_key(node)
            if key is None or not node.outputs:
                continue
            first = seen.setdefault(key, node)
            if first is node:
                continue
            keep, drop = first, node
            if _writes_output(node, outputs) and not _writes_output(first, outputs):
                keep, drop = node, first  # the graph output keeps its producer
            if _writes_output(drop, outputs):
                result.skip(node, f"it duplicates {first.name or first.op}, and both write graph outputs")
                continue
            for old, new in zip(drop.outputs, keep.outputs):
                replace_uses(old, new)
            drop.outputs.clear()
            drop.inputs.clear()
            seen[key] = keep
            result.changed += 1
        return result


def _writes_output(node: gs.Node, graph_outputs: set[int]) -> bool:
    return any(id(t) in graph_outputs for t in node.outputs)


def node_key(node: gs.Node) -> Hashable | None:
    """What makes two nodes compute the same values, or None for a node that is never merged."""
    if node.op in RANDOM_OPS:
        return None
    attrs = []
    for name, value in sorted(node.attrs.items()):
        if isinstance(value, gs.Graph):
            return None
        attrs.append((name, _attr_key(value)))
    inputs = tuple(id(t) if t.name else "" for t in node.inputs)
    return (node.op, node.domain or "", inputs, tuple(attrs), len(node.outputs))


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
