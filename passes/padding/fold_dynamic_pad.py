"""fold-dynamic-pad: a Pad whose ``pads`` are computed from the runtime shape gets constant ``pads``.

torch's legacy exporter writes TF-style "same" padding (``F.pad`` with sizes computed from ``x.shape``)
as a shape-computing chain. Before::

    x ─ Shape ─ Gather(2) ─ Sub ─ Div ─ Cast ─ … ─ Concat ─ Reshape ─ Slice ─ Transpose ─ Reshape ─ Cast ─┐
    x ──────────────────────────────────────────────────────────────────────────────────────────────────Pad ─ Conv

After (``fold-pad`` then moves the constant pads into the Conv)::

    x ─ Pad(pads=[0,0,0,0, 0,0,1,1]) ─ Conv

Preconditions: every Shape the chain reads has static values at the dims it reads. A dynamic batch is fine
when the chain only gathers H and W (each reader of the shape is a Gather/Slice with constant indices);
the chain is then evaluated offline with the ONNX reference evaluator. Because a folded Pad makes the
shapes after it static, each fold propagates shapes forward locally (:mod:`onnxmend.passes.infra.shapes`),
so a network with 50 chained Pads is folded in one linear sweep.

Non-goals: pads that depend on tensor values (not shapes), and Pads whose ``pads`` are already constant.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.core.graph import const_value
from onnxmend.passes.infra.base import Pass, PassContext, PassResult
from onnxmend.passes.infra.shapes import propagate_shapes
from onnxmend.passes.padding.pad_spec import evaluate_tensor

log = logging.getLogger(__name__)

MAX_SWEEPS = 4


class FoldDynamicPad(Pass):
    name = "fold-dynamic-pad"
    fixes = "Turns shape-computed Pad sizes (torch legacy TF-'same' padding chains) into constants."
    preconditions = "The dims the chain reads are static (a dynamic batch is fine when only H/W are read)."

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        result = PassResult()
        skipped: list[tuple[gs.Node, str]] = []
        for _ in range(MAX_SWEEPS):  # one sweep suffices when graph.nodes is in topological order
            skipped = []
            folded = sum(_fold_one(node, ctx.opset, skipped) for node in _computed_pads(graph))
            result.changed += folded
            if not folded or not skipped:
                break
        for node, reason in skipped:
            result.skip(node, reason)
        return result


def _computed_pads(graph: gs.Graph) -> list[gs.Node]:
    return [
        n for n in graph.nodes
        if n.op == "Pad" and "pads" not in n.attrs and len(n.inputs) > 1 and const_value(n.inputs[1]) is None
    ]


def _fold_one(node: gs.Node, opset: int, skipped: list[tuple[gs.Node, str]]) -> int:
    value = evaluate_tensor(node.inputs[1], opset, allow_shapes=True)
    if isinstance(value, str):
        skipped.append((node, value))
        return 0
    pads = np.asarray(value).astype(np.int64).reshape(-1)
    node.inputs[1] = gs.Constant(f"{node.name or node.outputs[0].name}_pads_static", pads)
    log.debug("%s: pads folded to %s", node.name, pads.tolist())
    propagate_shapes(node, opset)  # the next chain reads the shapes this fold makes static
    return 1


PASS = FoldDynamicPad
