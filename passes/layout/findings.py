"""Layout findings for ``onnxmend inspect``: how many Transposes, and how many sit between two
layout-sensitive ops (the tf2onnx pattern ``Conv ─T─ Relu ─T─ Conv`` that push-transposes removes).

The walk uses push-transposes' own handler table, so "layout-agnostic" means the same thing here as in
the pass.
"""

from __future__ import annotations

import onnx
import onnx_graphsurgeon as gs

from onnxmend.core.graph import import_graph
from onnxmend.passes.layout.perm import perm_of
from onnxmend.passes.layout.transpose_handlers import HANDLERS, LAYOUT_SENSITIVE


def transpose_findings(model: onnx.ModelProto, graph: gs.Graph | None = None) -> dict[str, object]:
    """Transposes in a model: how many, and how many sit between two layout-sensitive ops.

    A Transpose "between" layout-sensitive ops is one whose nearest producer and nearest consumer through
    layout-agnostic ops are both Conv/pools/norms: the tf2onnx pattern ``Conv ─T─ Relu ─T─ Conv`` that
    ``push-transposes`` should remove.
    """
    graph = graph if graph is not None else import_graph(model)
    transposes = [n for n in graph.nodes if n.op == "Transpose"]
    between = sum(1 for t in transposes if _reaches_sensitive(t, upward=True) and _reaches_sensitive(t, upward=False))
    inputs = {id(t) for t in graph.inputs}
    outputs = {id(t) for t in graph.outputs}
    return {
        "transposes": len(transposes),
        "between_layout_sensitive": between,
        "at_inputs": sum(1 for t in transposes if t.inputs and id(t.inputs[0]) in inputs),
        "at_outputs": sum(1 for t in transposes if t.outputs and id(t.outputs[0]) in outputs),
        "perms": sorted({str(list(perm_of(t))) for t in transposes}),
    }


def _reaches_sensitive(start: gs.Node, upward: bool, limit: int = 64) -> bool:
    frontier, seen = [start], {id(start)}
    while frontier and len(seen) < limit:
        node = frontier.pop()
        tensors = node.inputs if upward else node.outputs
        neighbours = [m for t in tensors for m in (t.inputs if upward else t.outputs)]
        for other in neighbours:
            if other.op in LAYOUT_SENSITIVE:
                return True
            if id(other) not in seen and (other.op in HANDLERS or other.op == "Transpose"):
                seen.add(id(other))
                frontier.append(other)
    return False
