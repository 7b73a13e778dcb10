"""fold-constants: subgraphs whose inputs are all constants (including Shape of static shapes) are
computed once, offline.

Before::

    W(const) ─Transpose─┐
    x ──────────────────Conv─ y

After::

    W'(const) ───────────┐
    x ──────────────────Conv─ y

Static reads of a shape (``Shape`` with its ``start``/``end``, and ``Gather``/``Slice`` of it) are folded
first (:mod:`~onnxmend.passes.cleanup.shape_reads`; graphsurgeon's shape folding ignores ``start``/``end``),
then onnx-graphsurgeon's ``fold_constants`` does the evaluation (with onnxruntime on the CPU); a subgraph it
cannot run is left alone with the reason. Its matcher is a dry run on a copy of the graph.
"""

from __future__ import annotations

import onnx_graphsurgeon as gs

from onnxmend.core.errors import first_line
from onnxmend.passes.infra.base import Pass, PassContext, PassResult
from onnxmend.passes.cleanup.shape_reads import fold_shape_reads
from onnxmend.passes.infra.graph_ops import sweep


class FoldConstants(Pass):
    name = "fold-constants"
    fixes = "Computes subgraphs whose inputs are all constants (including Shape of static shapes) once, offline."
    preconditions = "onnxruntime can run the constant subgraph on CPU."

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        result = PassResult()
        if not has_foldable(graph):
            return result  # graphsurgeon would copy the whole graph to find nothing
        before = len(graph.nodes)
        fold_shape_reads(graph)  # graphsurgeon's own shape folding ignores Shape's start/end
        try:
            graph.fold_constants(error_ok=False, fold_shapes=False, partitioning="basic")
        except Exception as exc:  # graphsurgeon surfaces ORT errors as-is; the shapes folded above stay folded
            result.skip("graph", f"constant folding failed: {first_line(exc, 200)}")
        sweep(graph)
        result.changed = max(0, before - len(graph.nodes))
        return result


def has_foldable(graph: gs.Graph) -> bool:
    """True when some node could fold: a Constant node, a Shape of a tensor of known rank (graphsurgeon
    folds the static dims it reads), or an op whose inputs are all constants."""
    for node in graph.nodes:
        if node.op == "Constant" or (node.op == "Shape" and node.inputs and node.inputs[0].shape is not None):
            return True
        if any(isinstance(v, gs.Graph) for v in node.attrs.values()):
            continue
        present = [t for t in node.inputs if t.name]
        if present and all(isinstance(t, gs.Constant) for t in present):
            return True
    return False


PASS = FoldConstants
