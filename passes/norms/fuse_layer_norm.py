"""Fuse decomposed LayerNorm chains into one ``LayerNormalization`` node (opset >= 17).

Before (torch, hand-written; any of the listed spellings)::

    x ─ReduceMean(axes)─┐                                  mean: ReduceMean (axes attr < 18, input >= 18)
    x ──────────────────Sub─ d ─Pow 2 | Mul d·d─ReduceMean─Add eps─Sqrt─┐      or GlobalAveragePool
                           d ─────────────────────────────────────────Div─ Mul γ ─ Add β ─ y
                                                     (or Sqrt─Reciprocal─Mul, Pow -0.5─Mul)

Before (tf2onnx / tf.nn.batch_normalization folds the affine into the statistics)::

    s' = Reciprocal(Sqrt(var + eps)) · γ
    y  = x·s' + (β − mean·s')            (also β + (−mean)·s', and without β or γ)

After::

    x ─LayerNormalization(axis = first normalized axis, epsilon, stash_type=1)(γ', β')─ y

The normalized axes must be a contiguous trailing set (last axis; C,H,W; H,W,C). Constant γ/β are
absorbed into scale/bias when they broadcast to the normalized shape; a per-channel γ of shape (C,) on an
(H,W,C) normalization (the tf.contrib form) is *expanded* to the full normalized shape (H,W,C), so the
node needs no trailing ``Mul``. γ/β that vary along non-normalized axes stay as a broadcast ``Mul``/``Add``
after the node. Float16/bfloat16 inputs fuse only as a Cast island (``Cast(float)`` around float32
statistics, then ``Cast`` back before the affine), which is exactly ``stash_type=1``. The
``Reshape → InstanceNormalization → Reshape → Mul → Add`` spelling with one group is fused too.

A pinned layout (``--layout nchw`` or ``keep``: ``PassContext.fusions_may_transpose`` is False) promises
no new Transposes, so a norm whose axes are not trailing fuses only where an inverse Transpose pair already
surrounds it; otherwise it stays decomposed, with the reason.

Not handled (skipped with a reason): non-trailing or non-contiguous axes, epsilon that is not a constant
or sits after the Sqrt, intermediates with other consumers, float16 statistics without Casts, γ/β that
would broadcast the output beyond the shape of x, normalized dims that are not static.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.core.graph import const_value
from onnxmend.passes.infra.base import MatchingPass, PassContext
from onnxmend.passes.infra.match import NoMatch, graph_opset, gs_const, tensor_dtype
from onnxmend.passes.infra.naming import Namer
from onnxmend.passes.norms.layer_norm_match import (
    LayerNormMatch,
    fit,
    inverse_transpose_before,
    looks_like_norm,
    match_layer_norm,
    norm_shape,
    transposes_added,
    undoing_transpose_after,
)
from onnxmend.passes.norms.moments import MEAN_OPS

log = logging.getLogger(__name__)

MIN_OPSET = 17


class FuseLayerNorm(MatchingPass):
    name = "fuse-layer-norm"
    fixes = "Replaces decomposed LayerNorm chains (torch, tf2onnx, hand-written, fp16 Cast islands) by one LayerNormalization."
    preconditions = "opset >= 17; normalized axes trailing and contiguous with static sizes; constant epsilon."

    def anchors(self, graph: gs.Graph) -> list[gs.Node]:
        return [n for n in graph.nodes if n.op in MEAN_OPS + ("Reshape",)]

    def match(self, graph: gs.Graph, node: gs.Node, ctx: PassContext) -> LayerNormMatch | str | None:
        try:
            match = match_layer_norm(graph, node)
        except NoMatch as exc:
            return str(exc) if node.op != "Reshape" and looks_like_norm(node) else None
        opset = graph_opset(graph, ctx.opset)
        if opset < MIN_OPSET:
            return f"LayerNormalization needs opset {MIN_OPSET}; the graph is at {opset}"
        if not ctx.fusions_may_transpose and transposes_added(graph, match) > 0:
            return (f"normalizing over axes {match.frame.axes} of a rank-{len(match.frame.perm)} tensor "
                    "needs a Transpose pair, and the pinned layout allows no new Transposes")
        return match

    def rewrite(self, graph: gs.Graph, match: LayerNormMatch, ctx: PassContext, names: Namer) -> None:
        _rewrite(graph, match, names)


def _rewrite(graph: gs.Graph, match: LayerNormMatch, namer: Namer) -> None:
    frame = match.frame
    shape = norm_shape(match.x, frame)
    dtype = tensor_dtype(match.x) or np.dtype(np.float32)
    name = namer(f"{match.nodes[0].name or 'layer_norm'}_fused")
    scale = np.ones(shape, dtype) if match.scale is None else _fitted(match.fitted_scale, match.scale, match)
    inputs = [_node_input(graph, match, namer), gs_const(namer(f"{name}.scale"), scale.astype(dtype))]
    if match.bias is not None:
        inputs.append(gs_const(namer(f"{name}.bias"), _fitted(match.fitted_bias, match.bias, match).astype(dtype)))
    out = match.output
    for node in match.nodes:
        node.inputs.clear()
        node.outputs.clear()
    # The chain after the node, in the original frame: [Transpose back], [Mul γ], [Add β].
    steps: list[tuple[str, list[gs.Tensor], dict]] = []
    if frame.perm:
        steps.append(("Transpose", [], {"perm": [int(p) for p in np.argsort(frame.perm)]}))
    steps += [(op, [t], {}) for op, t in (("Mul", match.trailing_scale), ("Add", match.trailing_bias)) if t is not None]
    if steps and steps[-1][0] == "Transpose":
        out = _cancel_inverse_transpose(graph, out, frame.perm, steps)
    attrs = {"axis": frame.axis, "epsilon": float(match.epsilon), "stash_type": 1}
    # The new tensors get their shapes here (a LayerNormalization keeps its input's, a Transpose permutes
    # it), so the manager's local inference has nothing left to do for them.
    current = out if not steps else gs.Variable(namer(f"{name}.normalized"), dtype=out.dtype,
                                                shape=_listed(inputs[0].shape))
    graph.nodes.append(gs.Node("LayerNormalization", name, attrs=attrs, inputs=inputs, outputs=[current]))
    for i, (op, params, op_attrs) in enumerate(steps):
        shape = _permuted(current.shape, op_attrs["perm"]) if op == "Transpose" else None
        dst = out if i == len(steps) - 1 else gs.Variable(namer(f"{name}.{op.lower()}_out"), dtype=out.dtype,
                                                          shape=shape)
        graph.nodes.append(gs.Node(op, namer(f"{name}.{op.lower()}"), attrs=op_attrs, inputs=[current, *params], outputs=[dst]))
        current = dst
    log.debug("fused LayerNorm %s (axis %d, perm %s, eps %g)", name, frame.axis, frame.perm, match.epsilon)


def _fitted(value: np.ndarray | None, tensor: gs.Tensor, match: LayerNormMatch) -> np.ndarray:
    """γ or β in the normalized shape: as matching fitted it, or fitted now."""
    return value if value is not None else fit(const_value(tensor), match.x, match.frame)


def _node_input(graph: gs.Graph, match: LayerNormMatch, namer: Namer) -> gs.Tensor:
    """x, or x with the normalized axes moved last; reuses the source of an inverse Transpose feeding x."""
    perm = match.frame.perm
    if not perm:
        return match.x
    before = inverse_transpose_before(match)
    if before is not None:
        return before.inputs[0]
    moved = gs.Variable(namer(f"{match.x.name}.normalized_last"), dtype=match.x.dtype,
                        shape=_permuted(match.x.shape, perm))
    graph.nodes.append(gs.Node("Transpose", namer(f"{match.x.name}.transpose"), attrs={"perm": list(perm)},
                               inputs=[match.x], outputs=[moved]))
    return moved


def _listed(shape: object) -> list | None:
    return list(shape) if isinstance(shape, (list, tuple)) else None


def _permuted(shape: object, perm: list[int] | tuple[int, ...]) -> list | None:
    """``shape`` transposed by ``perm``; None when the shape is unknown or its rank is not the perm's."""
    dims = _listed(shape)
    return [dims[p] for p in perm] if dims is not None and len(dims) == len(perm) else None


def _cancel_inverse_transpose(graph: gs.Graph, out: gs.Variable, perm: tuple[int, ...], steps: list) -> gs.Variable:
    """When ``out`` only feeds a Transpose by ``perm`` (undoing ours), drop both and write its output."""
    after = undoing_transpose_after(graph, out, perm)
    if after is None:
        return out
    final = after.outputs[0]
    after.inputs.clear()
    after.outputs.clear()
    steps.pop()
    return final


PASS = FuseLayerNorm
