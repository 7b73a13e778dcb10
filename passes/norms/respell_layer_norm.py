"""Respell a decomposed LayerNorm that cannot be fused in its shortest primitive form.

fuse-layer-norm turns decomposed LayerNorms into one node, but some must stay decomposed: the target
opset is below 17, or a pinned layout (``--layout nchw``/``keep``) forbids the Transpose pair that a
channel LayerNorm of an NCHW graph would need. Exporters spell those norms long; tf2onnx folds the affine
into the statistics, which costs about eight full-size elementwise nodes per norm::

    s = Reciprocal(Sqrt(ReduceMean((x − mean)²) + eps)) · γ        (s is full size: [1,C,H,W]·[N,1,H,W])
    y = x·s + (β − mean·s)

After (the same arithmetic as decompose-norms emits; five full-size nodes, two reductions)::

    d = x − ReduceMean(x, axes)
    y = d / Sqrt(ReduceMean(d·d, axes) + eps) · γ + β

It runs in the fix preset after the fusions (so it sees only what could not fuse) and in the portable
preset after decompose-norms. Only chains that fuse-layer-norm recognises are touched, and only when the
new spelling has fewer nodes (so the pass is idempotent: its own output is already the shortest).
Float16/bfloat16 Cast islands are left as spelled. ConvNeXtTiny with ``--layout nchw``: 408 → 298 nodes (255 once fold-conv-input-affine takes γ/β into the
next convolutions), about 3 % faster on onnxruntime CPU.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.passes.infra.base import MatchingPass, PassContext
from onnxmend.passes.infra.match import NoMatch, graph_opset, is_low_precision, tensor_dtype
from onnxmend.passes.infra.naming import Namer
from onnxmend.passes.norms.emitter import Emitter
from onnxmend.passes.norms.layer_norm_match import LayerNormMatch, match_layer_norm
from onnxmend.passes.norms.moments import MEAN_OPS

log = logging.getLogger(__name__)

# ReduceMean, Sub, Mul, ReduceMean, Add, Sqrt, Div: the normalization without its affine.
NORMALIZE_NODES = 7


class RespellLayerNorm(MatchingPass):
    name = "respell-layer-norm"
    fixes = "Rewrites a decomposed LayerNorm that stays unfused (opset < 17, pinned layout) in its shortest primitive form."
    preconditions = "a chain fuse-layer-norm matches; float32; the new spelling is shorter."

    def anchors(self, graph: gs.Graph) -> list[gs.Node]:
        return [n for n in graph.nodes if n.op in MEAN_OPS and n.inputs]

    def match(self, graph: gs.Graph, node: gs.Node, ctx: PassContext) -> LayerNormMatch | str | None:
        try:
            match = match_layer_norm(graph, node)
        except NoMatch:
            return None
        return _blocker(match) or match

    def rewrite(self, graph: gs.Graph, match: LayerNormMatch, ctx: PassContext, names: Namer) -> None:
        stem = match.nodes[0].name or "layer_norm"
        _respell(graph, match, Emitter(graph, names, stem, graph_opset(graph, ctx.opset)))


def _blocker(match: LayerNormMatch) -> str:
    if is_low_precision(match.x) or any(n.op == "Cast" for n in match.nodes):
        return "a float16/bfloat16 Cast island is left as spelled"
    if respelled_size(match) >= len(match.nodes):
        return f"already in its shortest spelling ({len(match.nodes)} nodes)"
    return ""


def respelled_size(match: LayerNormMatch) -> int:
    params = (match.scale, match.bias, match.trailing_scale, match.trailing_bias)
    return NORMALIZE_NODES + sum(p is not None for p in params)


def _respell(graph: gs.Graph, match: LayerNormMatch, emit: Emitter) -> None:
    dtype = tensor_dtype(match.x) or np.dtype(np.float32)
    old = list(match.nodes)
    for node in old:
        node.outputs.clear()
    steps = [(op, p) for op, p in (("Mul", match.scale), ("Add", match.bias), ("Mul", match.trailing_scale),
                                   ("Add", match.trailing_bias)) if p is not None]
    current: gs.Tensor = emit.normalize(match.x, match.frame.axes, float(match.epsilon), dtype,
                                        out=None if steps else match.output)
    for i, (op, param) in enumerate(steps):
        current = emit.op(op, [current, param], dtype, out=match.output if i == len(steps) - 1 else None)
    for node in old:
        node.inputs.clear()
    log.debug("respelled LayerNorm at %s over axes %s (%d → %d nodes)", match.x.name, match.frame.axes,
              len(old), respelled_size(match))


PASS = RespellLayerNorm
