"""remove-identity: Identity nodes and inference-mode Dropout only rename tensors; they go.

Before::

    x ─Identity─ Dropout ─ Relu ─ y

After::

    x ─ Relu ─ y

An Identity or Dropout whose output is a graph output stays only when its input is a graph input or a
constant (there is no producer to write the output's name). Dropout stays when its mask output is used
or ``training_mode`` may be true.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.core.graph import bypass, output_ids, producer
from onnxmend.passes.infra.base import MatchingPass, PassContext
from onnxmend.passes.infra.naming import Namer


class RemoveIdentity(MatchingPass):
    name = "remove-identity"
    fixes = "Removes Identity nodes and inference-mode Dropout, which only rename tensors."
    preconditions = "Dropout has no mask output in use and no training_mode input set to true."

    def anchors(self, graph: gs.Graph) -> list[gs.Node]:
        return [n for n in graph.nodes if n.op in ("Identity", "Dropout")]

    def match(self, graph: gs.Graph, node: gs.Node, ctx: PassContext) -> gs.Node | str:
        outputs = output_ids(graph)
        reason = _dropout_blocker(node, outputs) if node.op == "Dropout" else ""
        if reason:
            return reason
        if id(node.outputs[0]) in outputs:
            source = node.inputs[0]
            if producer(source) is None or len(source.outputs) != 1 or id(source) in outputs:
                return "input is a graph input or constant and output is a graph output"
        return node

    def rewrite(self, graph: gs.Graph, match: gs.Node, ctx: PassContext, names: Namer) -> None:
        bypass(match, output_ids(graph))


def _dropout_blocker(node: gs.Node, graph_outputs: set[int]) -> str:
    if len(node.outputs) > 1 and (node.outputs[1].outputs or id(node.outputs[1]) in graph_outputs):
        return "the Dropout mask output is used"
    if len(node.inputs) > 2 and node.inputs[2].name:
        mode = node.inputs[2]
        if not isinstance(mode, gs.Constant) or bool(np.asarray(mode.values).any()):
            return "training_mode may be true"
    return ""


PASS = RemoveIdentity
