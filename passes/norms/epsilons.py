"""Report normalization epsilons (for ``inspect`` and ``convert`` reports).

Frameworks disagree on defaults: Keras BatchNormalization and LayerNormalization use 1e-3, torch uses
1e-5 for both, transformer code often 1e-6 or 1e-12. A model re-implemented in another framework with
that framework's default drifts silently (seed 002), so every epsilon is listed and the ones that differ
from the source framework's default are flagged. Nothing here edits the model.
"""

from __future__ import annotations

import logging
from typing import Any

import onnx
import onnx_graphsurgeon as gs

from onnxmend.core.graph import import_graph, infer_shapes
from onnxmend.passes.infra.match import NoMatch
from onnxmend.passes.norms.moments import MEAN_OPS, match_moments

log = logging.getLogger(__name__)

NORM_OPS = ("BatchNormalization", "LayerNormalization", "InstanceNormalization", "GroupNormalization")
ONNX_DEFAULT_EPSILON = 1e-5
# Source-framework defaults per operator family; frameworks not listed have no convention to check.
FRAMEWORK_DEFAULTS: dict[str, dict[str, float]] = {
    "torch": {op: 1e-5 for op in NORM_OPS},
    "keras": {op: 1e-3 for op in NORM_OPS},
}
FRAMEWORK_ALIASES = {"pytorch": "torch", "tf": "keras", "tensorflow": "keras", "tflite": "keras"}
TRANSFORMER_EPSILONS = (1e-6, 1e-12)
DECOMPOSED = "decomposed LayerNorm"


def norm_epsilons(model: onnx.ModelProto, framework: str, graph: gs.Graph | None = None) -> list[dict[str, Any]]:
    """Every norm epsilon (fused ops and decomposed LayerNorm candidates), flagged against ``framework``;
    ``graph`` is ``model`` already imported with its shapes inferred, when the caller has it."""
    defaults = FRAMEWORK_DEFAULTS.get(FRAMEWORK_ALIASES.get(framework, framework), {})
    rows = []
    for name, op, eps in _epsilons(model, graph):
        family = "LayerNormalization" if op == DECOMPOSED else op
        default = defaults.get(family)
        differs = default is not None and not _same(eps, default)
        rows.append({
            "node": name, "op": op, "epsilon": eps, "framework_default": default, "differs": differs,
            "note": _note(eps, default, framework, differs),
        })
    return rows


def _epsilons(model: onnx.ModelProto, graph: gs.Graph | None = None) -> list[tuple[str, str, float]]:
    graph = graph or import_graph(infer_shapes(model))
    found = []
    for node in graph.nodes:
        if node.op in NORM_OPS:
            found.append((node.name, node.op, float(node.attrs.get("epsilon", ONNX_DEFAULT_EPSILON))))
        elif node.op in MEAN_OPS and _subtracted(node):
            try:
                found.append((node.name, DECOMPOSED, match_moments(graph, node).epsilon))
            except NoMatch:
                continue  # no epsilon to read (e.g. not a normalization after all)
    return found


def _subtracted(mean_node: gs.Node) -> bool:
    x = mean_node.inputs[0]
    readers = [n for t in mean_node.outputs for n in t.outputs]
    readers += [m for n in readers if n.op == "Reshape" for m in n.outputs[0].outputs]
    return any(n.op == "Sub" and n.inputs[0] is x for n in readers)


def _same(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-3 * abs(b)  # float32 storage: 1e-5 reads back as 9.99999975e-06


def _note(eps: float, default: float | None, framework: str, differs: bool) -> str:
    if default is None:
        return ""
    if not differs:
        return f"matches the {framework} default"
    if any(_same(eps, t) for t in TRANSFORMER_EPSILONS):
        return f"{eps:g} differs from the {framework} default {default:g} (a common transformer value)"
    other = [fw for fw, d in FRAMEWORK_DEFAULTS.items() if fw != framework and _same(eps, next(iter(d.values())))]
    hint = f"; it is the {other[0]} default, check the source model sets it explicitly" if other else ""
    return f"{eps:g} differs from the {framework} default {default:g}{hint}"
