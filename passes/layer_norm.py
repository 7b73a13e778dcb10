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
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.passes.base import Pass, PassContext, PassResult
from onnxmend.passes.group_norm import match_grouped
from onnxmend.passes.norm_match import (
    LOW_PRECISION_ONNX, MEAN_OPS, Moments, Namer, NoMatch, cast_to, const_value, consumers, fit_affine,
    graph_opset, gs_const, is_graph_output, is_low_precision, match_moments, other_input, private, producer,
    require, require_private, sole_consumer, static_dims, tensor_dtype, rank_of,
)

log = logging.getLogger(__name__)

MIN_OPSET = 17


@dataclass(frozen=True)
class Frame:
    """Where the normalized axes are: ``axis`` of the node, after ``perm`` moved them last (if set)."""

    axis: int
    perm: tuple[int, ...] | None = None

    @property
    def axes(self) -> list[int]:
        """The normalized axes of x, ascending (negative when they are the trailing ones and perm is unset)."""
        return list(self.perm[self.axis:]) if self.perm else list(range(self.axis, 0))

    def shape(self, x: gs.Tensor) -> list | None:
        return None if x.shape is None else [x.shape[p] for p in self.perm] if self.perm else list(x.shape)

    def value(self, value: np.ndarray) -> np.ndarray:
        """A constant that broadcasts against x, seen in the node's (permuted) frame."""
        if not self.perm:
            return value
        require(value.ndim <= len(self.perm), f"affine of shape {value.shape} broadcasts the output beyond x's rank")
        return np.transpose(value.reshape((1,) * (len(self.perm) - value.ndim) + value.shape), self.perm)


def frame_for(axes: tuple[int, ...], rank: int | None) -> Frame:
    """Trailing axes need no Transpose; a contiguous inner block (NCHW channels) is moved last."""
    k = len(axes)
    if axes == tuple(range(-k, 0)):
        return Frame(-k)
    require(rank is not None, f"axes {axes} are not trailing and the rank is unknown")
    positive = [a + rank for a in axes]
    require(positive == list(range(positive[0], positive[0] + k)), f"axes {axes} are not a contiguous set")
    perm = tuple(a for a in range(rank) if a not in positive) + tuple(positive)
    return Frame(-k, perm)


@dataclass(frozen=True)
class LayerNormMatch:
    """One decomposed LayerNorm: the node reads ``x`` and writes ``output``; ``nodes`` die."""

    x: gs.Tensor
    frame: Frame
    epsilon: float
    output: gs.Variable
    scale: gs.Tensor | None  # γ absorbed into the node (constant)
    bias: gs.Tensor | None  # β absorbed into the node (constant)
    trailing_scale: gs.Tensor | None  # γ that must stay a Mul after the node
    trailing_bias: gs.Tensor | None
    nodes: tuple[gs.Node, ...]


def match_layer_norm(graph: gs.Graph, anchor: gs.Node) -> LayerNormMatch:
    """Match a decomposed LayerNorm at its mean node, or at the Reshape of a one-group InstanceNorm."""
    if anchor.op == "Reshape":
        grouped = match_grouped(graph, anchor)
        require(grouped.groups == 1, f"{grouped.groups} groups: a GroupNorm, not a LayerNorm")
        frame = Frame(-(len(grouped.x.shape) - 1))
        return _with_affine(graph, grouped.x, frame, grouped.epsilon, grouped.output, grouped.nodes)
    moments = match_moments(graph, anchor)
    frame = frame_for(moments.axes, rank_of(moments.x))
    if moments.inv_std is not None and not _is_centered_mul(moments):
        return _folded(graph, moments, frame)
    return _centered(graph, moments, frame)


def _is_centered_mul(m: Moments) -> bool:
    users = consumers(m.inv_std)
    return len(users) == 1 and users[0].op == "Mul" and {id(t) for t in users[0].inputs} == {id(m.centered), id(m.inv_std)}


def _centered(graph: gs.Graph, m: Moments, frame: Frame) -> LayerNormMatch:
    """y = d / sqrt(var + eps) or d * rsqrt(var + eps), then an optional Mul γ / Add β."""
    if m.std is not None:
        node = sole_consumer(graph, m.std, "Div")
        require(node.inputs[0] is m.centered and node.inputs[1] is m.std, f"{node.name} is not d / std")
    else:
        node = sole_consumer(graph, m.inv_std, "Mul")
    require_private(graph, m.centered, [m.variance_reader, node])
    require_private(graph, m.mean, [m.mean_reader])
    x, out, cast_nodes = _precision(graph, m, node.outputs[0], [m.nodes[0], _sub(m)])
    return _with_affine(graph, x, frame, m.epsilon, out, m.nodes + (node,) + cast_nodes)


def _sub(m: Moments) -> gs.Node:
    return next(n for n in m.nodes if n.op == "Sub")


def _precision(
    graph: gs.Graph, m: Moments, normalized: gs.Variable, x_readers: list[gs.Node]
) -> tuple[gs.Tensor, gs.Variable, tuple[gs.Node, ...]]:
    """The node's input and output: through a float16/bfloat16 Cast island, or float32 as it is."""
    users = consumers(normalized)
    back = users[0] if len(users) == 1 and users[0].op == "Cast" and not is_graph_output(graph, normalized) else None
    if back is not None and cast_to(back) not in LOW_PRECISION_ONNX:
        back = None
    if m.centered_cast:  # torch legacy float16: mean in float16, the rest in float32
        require(is_low_precision(m.x) and back is not None, "float32 statistics are not cast back to float16")
        return m.x, back.outputs[0], (back,)
    require(not is_low_precision(m.x), "statistics are computed in float16/bfloat16 without a Cast to float32")
    up = producer(m.x, "Cast")
    if back is not None and up is not None and is_low_precision(up.inputs[0]) and private(graph, m.x, x_readers):
        if tensor_dtype(up.inputs[0]) is not None and cast_to(back) == _onnx_dtype(up.inputs[0]):
            return up.inputs[0], back.outputs[0], (up, back)
    return m.x, normalized, ()


def _onnx_dtype(tensor: gs.Tensor) -> int:
    import onnx

    return onnx.helper.np_dtype_to_tensor_dtype(np.dtype(tensor.dtype))


def _folded(graph: gs.Graph, m: Moments, frame: Frame) -> LayerNormMatch:
    """tf.nn.batch_normalization: s = rsqrt·γ; y = x·s + (β − mean·s) (or β + (−mean)·s)."""
    gamma, s, nodes = None, m.inv_std, list(m.nodes)
    users = consumers(s)
    if len(users) == 1 and users[0].op == "Mul" and const_value(other_input(users[0], s)) is not None:
        gamma, s = other_input(users[0], s), users[0].outputs[0]
        nodes.append(users[0])
    muls = consumers(s)
    require(len(muls) == 2 and all(n.op == "Mul" for n in muls) and not is_graph_output(graph, s), f"{s.name} is not read by exactly two Muls")
    mul_x = next((n for n in muls if other_input(n, s) is m.x), None)
    require(mul_x is not None, f"{s.name} does not scale {m.x.name}")
    mul_m = muls[1] if muls[0] is mul_x else muls[0]
    shifted, negated = other_input(mul_m, s), False
    if shifted is not m.mean:
        neg = producer(shifted, "Neg")
        require(neg is not None and neg.inputs[0] is m.mean, f"{mul_m.name} does not scale the mean")
        require_private(graph, shifted, [mul_m])
        nodes.append(neg)
        negated = True
    require_private(graph, m.mean, [m.mean_reader, nodes[-1] if negated else mul_m])
    require_private(graph, m.centered, [m.variance_reader])
    beta, final, tail = _folded_shift(graph, mul_x.outputs[0], mul_m.outputs[0], negated)
    require(not is_low_precision(m.x), "statistics are computed in float16/bfloat16 without a Cast to float32")
    nodes += [mul_x, mul_m, *tail]
    return _affine_from(graph, m.x, frame, m.epsilon, final, tuple(nodes), gamma, beta)


def _folded_shift(
    graph: gs.Graph, xs: gs.Variable, ms: gs.Variable, negated: bool
) -> tuple[gs.Tensor | None, gs.Variable, list[gs.Node]]:
    """y = xs + (β − ms) | xs + (β + ms) with ms negated | xs − ms | xs + ms with ms negated."""
    final = sole_consumer(graph, xs, "Add", "Sub")
    if final.op == "Sub":
        require(final.inputs[0] is xs and final.inputs[1] is ms and not negated, f"{final.name} is not x·s − mean·s")
        return None, final.outputs[0], [final]
    other = other_input(final, xs)
    if other is ms:
        require(negated, f"{final.name} adds mean·s instead of subtracting it")
        return None, final.outputs[0], [final]
    shift = producer(other, "Add", "Sub")
    require(shift is not None, f"{final.name} does not add a shift β − mean·s")
    require_private(graph, other, [final])
    require_private(graph, ms, [shift])
    if shift.op == "Sub":
        require(shift.inputs[1] is ms and not negated, f"{shift.name} is not β − mean·s")
        beta = shift.inputs[0]
    else:
        require(negated, f"{shift.name} adds mean·s instead of subtracting it")
        beta = other_input(shift, ms)
    require(const_value(beta) is not None, f"shift {beta.name} is not a constant β")
    return beta, final.outputs[0], [shift, final]


def _with_affine(
    graph: gs.Graph, x: gs.Tensor, frame: Frame, eps: float, out: gs.Variable, nodes: tuple[gs.Node, ...]
) -> LayerNormMatch:
    """Absorb a following constant ``Mul γ`` then ``Add β`` while they fit the normalized shape."""
    gamma = beta = None
    for op in ("Mul", "Add"):
        users = consumers(out)
        if len(users) != 1 or users[0].op != op or is_graph_output(graph, out):
            continue
        param = other_input(users[0], out)
        value = const_value(param)
        if value is None or fit(value, x, frame) is None:
            break  # stays after the node, as it was
        gamma, beta = (param, beta) if op == "Mul" else (gamma, param)
        nodes, out = nodes + (users[0],), users[0].outputs[0]
    return LayerNormMatch(x, frame, eps, out, gamma, beta, None, None, nodes)


def _affine_from(
    graph: gs.Graph, x: gs.Tensor, frame: Frame, eps: float, out: gs.Variable, nodes: tuple[gs.Node, ...],
    gamma: gs.Tensor | None, beta: gs.Tensor | None,
) -> LayerNormMatch:
    """The folded form's γ/β: absorbed when both fit, otherwise rebuilt as a Mul/Add after the node."""
    fits = [fit(const_value(t), x, frame) is not None for t in (gamma, beta) if t is not None]
    if all(fits):
        return LayerNormMatch(x, frame, eps, out, gamma, beta, None, None, nodes)
    return LayerNormMatch(x, frame, eps, out, None, None, gamma, beta, nodes)


def fit(value: np.ndarray, x: gs.Tensor, frame: Frame) -> np.ndarray | None:
    """γ/β as the node's scale/bias (see :func:`fit_affine`), in the node's frame."""
    return fit_affine(frame.value(value), frame.shape(x), _norm_shape(x, frame))


def _norm_shape(x: gs.Tensor, frame: Frame) -> tuple[int, ...]:
    axes = frame.axes
    dims = static_dims(x, axes)
    require(dims is not None, f"the normalized dims of {x.name} are not static")
    return dims


class FuseLayerNorm(Pass):
    name = "fuse-layer-norm"
    fixes = "Replaces decomposed LayerNorm chains (torch, tf2onnx, hand-written, fp16 Cast islands) by one LayerNormalization."
    preconditions = "opset >= 17; normalized axes trailing and contiguous with static sizes; constant epsilon."

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        result = PassResult()
        opset = graph_opset(graph, ctx.opset)
        namer = Namer(graph)
        for node in list(graph.nodes):
            if node.op not in MEAN_OPS + ("Reshape",) or not node.outputs:
                continue
            try:
                match = match_layer_norm(graph, node)
            except NoMatch as exc:
                if node.op != "Reshape" and _looks_like_norm(node):
                    result.skip(node, str(exc))
                continue
            if opset < MIN_OPSET:
                result.skip(node, f"LayerNormalization needs opset {MIN_OPSET}; the graph is at {opset}")
                continue
            if not ctx.fusions_may_transpose and transposes_added(graph, match) > 0:
                result.skip(node, f"normalizing over axes {match.frame.axes} of a rank-{len(match.frame.perm)} tensor "
                                  "needs a Transpose pair, and the pinned layout allows no new Transposes")
                continue
            _rewrite(graph, match, namer)
            result.changed += 1
        return result


def transposes_added(graph: gs.Graph, match: LayerNormMatch) -> int:
    """How many Transpose nodes fusing ``match`` adds (net): 0 for trailing axes or a cancelled pair."""
    perm = match.frame.perm
    if not perm:
        return 0
    before = 0 if _inverse_transpose_before(match) is not None else 1
    has_trailing_affine = match.trailing_scale is not None or match.trailing_bias is not None
    after = -1 if not has_trailing_affine and _undoing_transpose_after(graph, match.output, perm) else 1
    return before + after


def _inverse_transpose_before(match: LayerNormMatch) -> gs.Node | None:
    """The Transpose feeding x whose permutation our ``frame.perm`` undoes, if there is one."""
    perm = match.frame.perm
    before = producer(match.x, "Transpose")
    if before is not None and [before.attrs["perm"][p] for p in perm] == list(range(len(perm))):
        return before
    return None


def _undoing_transpose_after(graph: gs.Graph, out: gs.Variable, perm: tuple[int, ...]) -> gs.Node | None:
    """The sole consumer of ``out`` when it is a Transpose by ``perm`` (so it undoes the move back)."""
    users = consumers(out)
    if len(users) != 1 or users[0].op != "Transpose" or is_graph_output(graph, out):
        return None
    return users[0] if list(users[0].attrs.get("perm", [])) == list(perm) else None


def _looks_like_norm(mean_node: gs.Node) -> bool:
    """A mean that is subtracted from its own input: worth a skip reason (a plain average pool is not)."""
    x, mean = mean_node.inputs[0], mean_node.outputs[0]
    return any(n.op == "Sub" and n.inputs[0] is x for n in consumers(mean))


def _rewrite(graph: gs.Graph, match: LayerNormMatch, namer: Namer) -> None:
    frame = match.frame
    norm_shape = _norm_shape(match.x, frame)
    dtype = tensor_dtype(match.x) or np.dtype(np.float32)
    name = namer(f"{match.nodes[0].name or 'layer_norm'}_fused")
    scale = np.ones(norm_shape, dtype) if match.scale is None else fit(const_value(match.scale), match.x, frame)
    inputs = [_node_input(graph, match, namer), gs_const(namer(f"{name}.scale"), scale.astype(dtype))]
    if match.bias is not None:
        inputs.append(gs_const(namer(f"{name}.bias"), fit(const_value(match.bias), match.x, frame).astype(dtype)))
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
    current = out if not steps else gs.Variable(namer(f"{name}.normalized"), dtype=out.dtype)
    graph.nodes.append(gs.Node("LayerNormalization", name, attrs=attrs, inputs=inputs, outputs=[current]))
    for i, (op, params, op_attrs) in enumerate(steps):
        dst = out if i == len(steps) - 1 else gs.Variable(namer(f"{name}.{op.lower()}_out"), dtype=out.dtype)
        graph.nodes.append(gs.Node(op, namer(f"{name}.{op.lower()}"), attrs=op_attrs, inputs=[current, *params], outputs=[dst]))
        current = dst
    log.debug("fused LayerNorm %s (axis %d, perm %s, eps %g)", name, frame.axis, frame.perm, match.epsilon)


def _node_input(graph: gs.Graph, match: LayerNormMatch, namer: Namer) -> gs.Tensor:
    """x, or x with the normalized axes moved last; reuses the source of an inverse Transpose feeding x."""
    perm = match.frame.perm
    if not perm:
        return match.x
    before = _inverse_transpose_before(match)
    if before is not None:
        return before.inputs[0]
    moved = gs.Variable(namer(f"{match.x.name}.normalized_last"), dtype=match.x.dtype)
    graph.nodes.append(gs.Node("Transpose", namer(f"{match.x.name}.transpose"), attrs={"perm": list(perm)},
                               inputs=[match.x], outputs=[moved]))
    return moved


def _cancel_inverse_transpose(graph: gs.Graph, out: gs.Variable, perm: tuple[int, ...], steps: list) -> gs.Variable:
    """When ``out`` only feeds a Transpose by ``perm`` (undoing ours), drop both and write its output."""
    after = _undoing_transpose_after(graph, out, perm)
    if after is None:
        return out
    final = after.outputs[0]
    after.inputs.clear()
    after.outputs.clear()
    steps.pop()
    return final


PASSES: tuple[type[Pass], ...] = (FuseLayerNorm,)
