"""fold-constants: subgraphs whose inputs are all constants (including Shape of static shapes) are
computed once, offline — in the main graph and inside If/Loop/Scan bodies.

Before::

    W(const) ─Transpose─┐
    x ──────────────────Conv─ y

    If(cond) ─ then: Add(x, Mul(Constant 2, k)) ─ else: …

After::

    W'(const) ───────────┐
    x ──────────────────Conv─ y

    If(cond) ─ then: Add(x, 2k) ─ else: …        (an If on a constant condition is replaced by its branch)

Static reads of a shape (``Shape`` with its ``start``/``end``, and ``Gather``/``Slice`` of it) are folded
first (:mod:`~onnxmend.passes.cleanup.shape_reads`; graphsurgeon's shape folding ignores ``start``/``end``),
then onnx-graphsurgeon's ``fold_constants`` does the evaluation (with onnxruntime on the CPU); a subgraph it
cannot run is left alone with the reason. Its matcher is a dry run on a copy of the graph.

The partitions graphsurgeon evaluates are stamped with IR version ``min(model's, 10)`` while folding:
graphsurgeon gives a subgraph no IR version of its own, so onnx's newest (14 with onnx 1.23) would be
written, which onnxruntime 1.31 refuses ("Unsupported model IR version") — the reason onnxsim skips
constant folding on such graphs. The model keeps its own IR version.
"""

from __future__ import annotations

from typing import Iterator

import onnx_graphsurgeon as gs

from onnxmend.core.errors import first_line
from onnxmend.passes.infra.base import Pass, PassContext, PassResult
from onnxmend.passes.cleanup.shape_reads import fold_shape_reads
from onnxmend.passes.infra.graph_ops import sweep

# The IR version of the partitions evaluated while folding: one every onnxruntime since 1.17 loads.
FOLD_IR_VERSION = 10


class FoldConstants(Pass):
    name = "fold-constants"
    fixes = ("Computes subgraphs whose inputs are all constants (including Shape of static shapes) once, "
             "offline, also inside If/Loop bodies.")
    preconditions = "onnxruntime can run the constant subgraph on CPU."

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        result = PassResult()
        if not any(has_foldable(g) for g in all_graphs(graph)):
            return result  # graphsurgeon would copy the whole graph to find nothing
        before = count_nodes(graph)
        for g in list(all_graphs(graph)):
            fold_shape_reads(g)  # graphsurgeon's own shape folding ignores Shape's start/end
        stamped = {id(g): g.ir_version for g in all_graphs(graph)}
        for g in all_graphs(graph):
            g.ir_version = min(graph.ir_version or FOLD_IR_VERSION, FOLD_IR_VERSION)
        try:
            graph.fold_constants(error_ok=False, fold_shapes=False, partitioning="basic")
        except Exception as exc:  # graphsurgeon surfaces ORT errors as-is; the shapes folded above stay folded
            result.skip("graph", f"constant folding failed: {first_line(exc, 200)}")
        finally:
            for g in all_graphs(graph):
                g.ir_version = stamped.get(id(g))
        for g in list(all_graphs(graph)):
            sweep(g)
        result.changed = max(0, before - count_nodes(graph))
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


def all_graphs(graph: gs.Graph) -> Iterator[gs.Graph]:
    """``graph`` and every subgraph (If branches, Loop and Scan bodies), depth first."""
    yield graph
    for node in graph.nodes:
        for value in node.attrs.values():
            if isinstance(value, gs.Graph):
                yield from all_graphs(value)


def count_nodes(graph: gs.Graph) -> int:
    """Nodes of ``graph`` and of all its subgraphs."""
    return sum(len(g.nodes) for g in all_graphs(graph))


PASS = FoldConstants
