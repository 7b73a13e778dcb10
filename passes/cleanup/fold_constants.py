"""fold-constants: subgraphs whose inputs are all constants (including Shape of static shapes) are
computed once, offline.

Before::

    W(const) ─Transpose─┐
    x ──────────────────Conv─ y

After::

    W'(const) ───────────┐
    x ──────────────────Conv─ y

onnx-graphsurgeon's ``fold_constants`` does the evaluation (with onnxruntime on the CPU); a subgraph it
cannot run is left alone with the reason. Its matcher is a dry run on a copy of the graph.
"""

from __future__ import annotations

import onnx_graphsurgeon as gs

from onnxmend.core.errors import first_line
from onnxmend.passes.infra.base import Pass, PassContext, PassResult


class FoldConstants(Pass):
    name = "fold-constants"
    fixes = "Computes subgraphs whose inputs are all constants (including Shape of static shapes) once, offline."
    preconditions = "onnxruntime can run the constant subgraph on CPU."

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        result = PassResult()
        before = len(graph.nodes)
        try:
            graph.fold_constants(error_ok=False, fold_shapes=True, partitioning="basic")
        except Exception as exc:  # graphsurgeon surfaces ORT errors as-is
            result.skip("graph", f"constant folding failed: {first_line(exc, 200)}")
            return result
        graph.cleanup()
        result.changed = max(0, before - len(graph.nodes))
        return result


PASS = FoldConstants
