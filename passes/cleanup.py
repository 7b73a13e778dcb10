"""Cleanup passes: constant folding, identity/dropout removal, dead nodes, duplicate initializers.

Before::

    W(const) ─Transpose─┐            x ─Identity─ Dropout ─ Relu ─ y
    x ──────────────────Conv─ y       (unused) Constant ─ Cast

After::

    W'(const) ───────────┐            x ─ Relu ─ y
    x ──────────────────Conv─ y

Non-goals: algebraic simplification (x*1, x+0) and anything that needs runtime values.
"""

from __future__ import annotations

import hashlib
import logging

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.passes.base import Pass, PassContext, PassResult

log = logging.getLogger(__name__)


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
            result.skip("graph", f"constant folding failed: {str(exc).splitlines()[0][:200]}")
            return result
        graph.cleanup()
        result.changed = max(0, before - len(graph.nodes))
        return result


class RemoveIdentity(Pass):
    name = "remove-identity"
    fixes = "Removes Identity nodes and inference-mode Dropout, which only rename tensors."
    preconditions = "Dropout has no mask output in use and no training_mode input set to true."

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        result = PassResult()
        outputs = {id(t) for t in graph.outputs}
        for node in list(graph.nodes):
            if node.op not in ("Identity", "Dropout"):
                continue
            reason = _removal_blocker(node, outputs)
            if reason:
                result.skip(node, reason)
                continue
            if _bypass(node, outputs):
                result.changed += 1
            else:
                result.skip(node, "input is a graph input or constant and output is a graph output")
        return result


def _removal_blocker(node: gs.Node, graph_outputs: set[int]) -> str:
    if node.op == "Dropout":
        if len(node.outputs) > 1 and (node.outputs[1].outputs or id(node.outputs[1]) in graph_outputs):
            return "the Dropout mask output is used"
        if len(node.inputs) > 2 and node.inputs[2].name:
            mode = node.inputs[2]
            if not isinstance(mode, gs.Constant) or bool(np.asarray(mode.values).any()):
                return "training_mode may be true"
    return ""


def _bypass(node: gs.Node, graph_outputs: set[int]) -> bool:
    src, dst = node.inputs[0], node.outputs[0]
    if id(dst) in graph_outputs:
        producer = src.inputs[0] if isinstance(src, gs.Variable) and src.inputs else None
        if producer is None or len(src.outputs) != 1 or id(src) in graph_outputs:
            return False
        # The producer writes the graph output directly, keeping the output's name.
        producer.outputs[producer.outputs.index(src)] = dst
        node.outputs.clear()
        node.inputs.clear()
        return True
    for consumer in list(dst.outputs):
        for i, tensor in enumerate(consumer.inputs):
            if tensor is dst:
                consumer.inputs[i] = src
    node.outputs.clear()
    node.inputs.clear()
    return True


class EliminateDeadNodes(Pass):
    name = "eliminate-dead-nodes"
    fixes = "Drops nodes and initializers that no graph output depends on."

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        result = PassResult()
        nodes_before = len(graph.nodes)
        consts_before = len(_constants(graph))
        graph.cleanup(remove_unused_graph_inputs=False)
        result.changed = (nodes_before - len(graph.nodes)) + (consts_before - len(_constants(graph)))
        return result


class DedupeInitializers(Pass):
    name = "dedupe-initializers"
    fixes = "Makes byte-identical constants (same dtype, shape and values) share one initializer."

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        result = PassResult()
        keep: dict[tuple[str, tuple[int, ...], str], gs.Constant] = {}
        for const in _constants(graph).values():
            values = np.asarray(const.values)
            key = (str(values.dtype), values.shape, hashlib.sha1(values.tobytes()).hexdigest())
            first = keep.setdefault(key, const)
            if first is const:
                continue
            for consumer in list(const.outputs):
                for i, tensor in enumerate(consumer.inputs):
                    if tensor is const:
                        consumer.inputs[i] = first
            result.changed += 1
        return result


def _constants(graph: gs.Graph) -> dict[str, gs.Constant]:
    return {name: t for name, t in graph.tensors().items() if isinstance(t, gs.Constant)}


PASSES: tuple[type[Pass], ...] = (FoldConstants, RemoveIdentity, EliminateDeadNodes, DedupeInitializers)
