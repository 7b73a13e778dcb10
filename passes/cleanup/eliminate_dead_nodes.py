"""eliminate-dead-nodes: nodes and initializers that no graph output depends on are dropped.

Before::

    x ─ Relu ─ y          (unused) Constant ─ Cast

After::

    x ─ Relu ─ y

Graph inputs stay, used or not (they are the model's interface).
"""

from __future__ import annotations

import onnx_graphsurgeon as gs

from onnxmend.passes.infra.base import Pass, PassContext, PassResult
from onnxmend.passes.infra.graph_ops import dead_nodes, remove_nodes


class EliminateDeadNodes(Pass):
    name = "eliminate-dead-nodes"
    fixes = "Drops nodes and initializers that no graph output depends on."

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        result = PassResult()
        result.tidy = True  # the sweep keeps the order of the nodes it keeps
        dead = dead_nodes(graph)
        if not dead:
            return result  # every node is live, so every constant is read
        consts_before = len(constants(graph))
        result.changed = remove_nodes(graph, dead) + (consts_before - len(constants(graph)))
        return result


def constants(graph: gs.Graph) -> dict[str, gs.Constant]:
    """The graph's constants by name, in node order, as ``graph.tensors()`` lists them (the last of two
    that share a name), without building its map of every tensor."""
    found: dict[str, gs.Constant] = {}
    for node in graph.nodes:
        for tensor in node.inputs:
            if isinstance(tensor, gs.Constant):
                found[tensor.name] = tensor
    for tensor in graph.outputs:
        if isinstance(tensor, gs.Constant):
            found[tensor.name] = tensor
    return found


PASS = EliminateDeadNodes
