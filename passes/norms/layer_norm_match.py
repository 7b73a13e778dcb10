"""Matching a decomposed LayerNorm: :func:`match_layer_norm` and the frame its axes live in.

A match starts at the norm's mean node (or the Reshape of a one-group InstanceNorm), reads the
statistics through :func:`~onnxmend.passes.norms.moments.match_moments`, and takes the affine that
follows. :class:`Frame` says where the normalized axes are: trailing, or a contiguous inner block (NCHW
channels) that a Transpose pair moves last. fuse-layer-norm, respell-layer-norm and the epsilon report
all read norms through this one matcher.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from onnxmend.core.graph import const_value, consumers, is_graph_output, producer, rank_of, static_dims
from onnxmend.passes.infra.match import (
    LOW_PRECISION_ONNX,
    cast_to,
    is_low_precision,
    other_input,
    private,
    require,
    require_private,
    sole_consumer,
    tensor_dtype,
)
from onnxmend.passes.norms.group_norm_match import match_grouped
from onnxmend.passes.norms.moments import Moments, fit_affine, match_moments


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
    # γ/β fitted to the normalized shape (:func:`fit`), when matching already computed them
    fitted_scale: np.ndarray | None = field(default=None, compare=False, repr=False)
    fitted_bias: np.ndarray | None = field(default=None, compare=False, repr=False)


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
    fitted: dict[str, np.ndarray] = {}
    for op in ("Mul", "Add"):
        users = consumers(out)
        if len(users) != 1 or users[0].op != op or is_graph_output(graph, out):
            continue
        param = other_input(users[0], out)
        value = const_value(param)
        fitted_value = None if value is None else fit(value, x, frame)
        if fitted_value is None:
            break  # stays after the node, as it was
        gamma, beta = (param, beta) if op == "Mul" else (gamma, param)
        fitted[op] = fitted_value
        nodes, out = nodes + (users[0],), users[0].outputs[0]
    return LayerNormMatch(x, frame, eps, out, gamma, beta, None, None, nodes, fitted.get("Mul"), fitted.get("Add"))


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
    return fit_affine(frame.value(value), frame.shape(x), norm_shape(x, frame))


def norm_shape(x: gs.Tensor, frame: Frame) -> tuple[int, ...]:
    axes = frame.axes
    dims = static_dims(x, axes)
    require(dims is not None, f"the normalized dims of {x.name} are not static")
    return dims


def transposes_added(graph: gs.Graph, match: LayerNormMatch) -> int:
    """How many Transpose nodes fusing ``match`` adds (net): 0 for trailing axes or a cancelled pair."""
    perm = match.frame.perm
    if not perm:
        return 0
    before = 0 if inverse_transpose_before(match) is not None else 1
    has_trailing_affine = match.trailing_scale is not None or match.trailing_bias is not None
    after = -1 if not has_trailing_affine and undoing_transpose_after(graph, match.output, perm) else 1
    return before + after


def inverse_transpose_before(match: LayerNormMatch) -> gs.Node | None:
    """The Transpose feeding x whose permutation our ``frame.perm`` undoes, if there is one."""
    perm = match.frame.perm
    before = producer(match.x, "Transpose")
    if before is not None and [before.attrs["perm"][p] for p in perm] == list(range(len(perm))):
        return before
    return None


def undoing_transpose_after(graph: gs.Graph, out: gs.Variable, perm: tuple[int, ...]) -> gs.Node | None:
    """The sole consumer of ``out`` when it is a Transpose by ``perm`` (so it undoes the move back)."""
    users = consumers(out)
    if len(users) != 1 or users[0].op != "Transpose" or is_graph_output(graph, out):
        return None
    return users[0] if list(users[0].attrs.get("perm", [])) == list(perm) else None


def looks_like_norm(mean_node: gs.Node) -> bool:
    """A mean that is subtracted from its own input, directly or through a Reshape: worth a skip reason (a
    plain average pool is not)."""
    x, mean = mean_node.inputs[0], mean_node.outputs[0]
    readers = consumers(mean)
    readers += [n for r in readers if r.op == "Reshape" for n in consumers(r.outputs[0])]
    return any(n.op == "Sub" and n.inputs[0] is x for n in readers)
