"""The statistics of a decomposed normalization: mean, centred input, variance, epsilon, 1/std.

:func:`match_moments` starts at a mean node (``ReduceMean``/``GlobalAveragePool``) and finds the rest in
the spellings exporters write (Pow 2 or Mul d·d; ReduceSumSquare / N; Sqrt then Div, Reciprocal, Div(1, ·)
or Pow −0.5). The LayerNorm, GroupNorm and epsilon code all read norms through it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.core.graph import const_value, consumers, is_graph_output, rank_of, static_dims
from onnxmend.passes.infra.match import NoMatch, close, other_input, private, require, scalar, sole_consumer

MEAN_OPS = ("ReduceMean", "GlobalAveragePool")


def reduce_axes(node: gs.Node, rank: int | None) -> tuple[int, ...]:
    """Axes (negative) that a ReduceMean/ReduceSumSquare/GlobalAveragePool averages over, with keepdims."""
    if node.op == "GlobalAveragePool":
        require(rank is not None, f"rank of {node.inputs[0].name} is unknown")
        return tuple(range(-(rank - 2), 0))
    require(int(node.attrs.get("keepdims", 1)) == 1, f"{node.name} drops the reduced axes (keepdims=0)")
    if "axes" in node.attrs:
        axes = [int(a) for a in node.attrs["axes"]]
    elif len(node.inputs) > 1 and node.inputs[1].name:
        value = const_value(node.inputs[1])
        require(value is not None, f"{node.name} reduces over axes that are not constant")
        axes = [int(a) for a in value.reshape(-1)]
    else:
        require(rank is not None, f"rank of {node.inputs[0].name} is unknown")
        axes = list(range(rank))
    require(bool(axes), f"{node.name} reduces over no axes")
    if rank is not None:
        axes = [a - rank if a >= 0 else a for a in axes]
    require(all(a < 0 for a in axes), f"{node.name} uses non-negative axes on a tensor of unknown rank")
    return tuple(sorted(set(axes)))


@dataclass(frozen=True)
class Moments:
    """``mean``, ``x - mean`` and ``1/sqrt(var + eps)`` found around one mean node.

    ``centered`` is the tensor the variance is computed from: ``x - mean``, or its Cast to float32 in
    the torch float16 spelling (``centered_cast``). Exactly one of ``std`` (read by a ``Div``) and
    ``inv_std`` (read by a ``Mul``) is set. ``nodes`` are the interior nodes that die with a fusion.
    """

    x: gs.Tensor
    axes: tuple[int, ...]
    epsilon: float
    mean: gs.Variable
    mean_reader: gs.Node
    centered: gs.Variable
    centered_cast: bool
    variance_reader: gs.Node
    std: gs.Variable | None
    inv_std: gs.Variable | None
    nodes: tuple[gs.Node, ...]


def match_moments(graph: gs.Graph, mean_node: gs.Node) -> Moments:
    """Match the statistics of a decomposed norm starting at its mean (``ReduceMean``/``GlobalAveragePool``)."""
    x = mean_node.inputs[0]
    axes = reduce_axes(mean_node, rank_of(x))
    mean = mean_node.outputs[0]
    # d = Sub(x, mean), where tf2onnx may put a shape-preserving Reshape (a cancelled Transpose) on mean
    reader, sub = _mean_reader(graph, x, mean)
    nodes: list[gs.Node] = [mean_node, sub] if reader is sub else [mean_node, reader, sub]
    centered, cast = sub.outputs[0], False
    users = consumers(centered)
    if len(users) == 1 and users[0].op == "Cast" and not is_graph_output(graph, centered):
        nodes.append(users[0])
        centered, cast = users[0].outputs[0], True
    variance, var_reader, var_nodes = _variance(graph, centered, axes, rank_of(x))
    nodes += var_nodes
    epsilon, biased, eps_node = _epsilon(graph, variance)
    nodes.append(eps_node)
    std, inv_std, tail = _rsqrt(graph, biased)
    nodes += tail
    return Moments(x, axes, epsilon, mean, reader, centered, cast, var_reader, std, inv_std, tuple(nodes))


def _mean_reader(graph: gs.Graph, x: gs.Tensor, mean: gs.Variable) -> tuple[gs.Node, gs.Node]:
    """The node reading ``mean`` on the way to ``Sub(x, mean)`` (the Sub, or a no-op Reshape) and the Sub."""
    for node in consumers(mean):
        if node.op == "Sub" and node.inputs[0] is x and node.inputs[1] is mean:
            return node, node
        if node.op == "Reshape" and _is_noop_reshape(node):
            subs = [n for n in consumers(node.outputs[0]) if n.op == "Sub" and n.inputs[0] is x]
            if len(subs) == 1 and private(graph, node.outputs[0], subs):
                return node, subs[0]
    raise NoMatch(f"mean {mean.name} is not subtracted from {x.name}")


def _is_noop_reshape(node: gs.Node) -> bool:
    """A Reshape to the shape its input already has. With a dynamic batch tf2onnx writes the cancelled
    Transpose of a mean as ``Reshape(mean[N,1,H,W], [-1,1,H,W])``: every other dim equal (a static match, or
    0 = copy), so the one -1 can only be N. A dynamic dim matched by anything but that -1 or 0 is unknown."""
    target = const_value(node.inputs[1])
    shape = node.inputs[0].shape
    if target is None or shape is None or target.ndim != 1 or len(target) != len(shape):
        return False
    copies = not int(node.attrs.get("allowzero", 0))
    free = 0
    for want, have in zip((int(t) for t in target), shape):
        if want == -1:
            free += 1
        elif not ((want == 0 and copies) or (isinstance(have, int) and want == have)):
            return False
    return free <= 1


def _variance(
    graph: gs.Graph, centered: gs.Variable, axes: tuple[int, ...], rank: int | None
) -> tuple[gs.Variable, gs.Node, list[gs.Node]]:
    """var = ReduceMean(d^2) with d^2 as Pow(d, 2) or Mul(d, d); or ReduceSumSquare(d) / N."""
    for node in consumers(centered):
        if node.op == "Pow" and node.inputs[0] is centered and scalar(node.inputs[1]) == 2.0:
            break
        if node.op == "Mul" and node.inputs[0] is centered and node.inputs[1] is centered:
            break
        if node.op == "ReduceSumSquare" and node.inputs[0] is centered:
            return _sum_square_variance(graph, node, centered, axes, rank)
    else:
        raise NoMatch(f"no squared deviation of {centered.name} (Pow 2, Mul d*d or ReduceSumSquare)")
    square = node.outputs[0]
    reduce = sole_consumer(graph, square, *MEAN_OPS)
    require(reduce_axes(reduce, rank) == axes, f"variance axes of {reduce.name} differ from the mean's axes")
    return reduce.outputs[0], node, [node, reduce]


def _sum_square_variance(
    graph: gs.Graph, node: gs.Node, centered: gs.Variable, axes: tuple[int, ...], rank: int | None
) -> tuple[gs.Variable, gs.Node, list[gs.Node]]:
    require(reduce_axes(node, rank) == axes, f"variance axes of {node.name} differ from the mean's axes")
    count = static_dims(centered, axes)
    require(count is not None, f"the normalized size of {centered.name} is not static")
    n = float(np.prod(count))
    scale = sole_consumer(graph, node.outputs[0], "Div", "Mul")
    factor = scalar(other_input(scale, node.outputs[0]))
    expected = n if scale.op == "Div" else 1.0 / n
    require(scale.inputs[0] is node.outputs[0] and close(factor, expected, 1e-6), f"{scale.name} does not divide by N={n:g}")
    return scale.outputs[0], node, [node, scale]


def _epsilon(graph: gs.Graph, variance: gs.Variable) -> tuple[float, gs.Variable, gs.Node]:
    """var + eps, with eps a scalar constant added before the square root."""
    add = sole_consumer(graph, variance)
    if add.op == "Sqrt":
        after = consumers(add.outputs[0])
        if any(n.op == "Add" and any(scalar(t) is not None for t in n.inputs) for n in after):
            raise NoMatch("epsilon is added after Sqrt (std + eps), which LayerNormalization cannot express")
        raise NoMatch(f"no epsilon is added to variance {variance.name}")
    require(add.op == "Add", f"variance {variance.name} feeds {add.op}, not Add(eps)")
    eps = scalar(other_input(add, variance))
    require(eps is not None, f"epsilon added in {add.name} is not a constant")
    require(eps >= 0.0, f"epsilon {eps:g} in {add.name} is negative")
    return eps, add.outputs[0], add


def _rsqrt(graph: gs.Graph, biased: gs.Variable) -> tuple[gs.Variable | None, gs.Variable | None, list[gs.Node]]:
    """Sqrt (read by Div), Sqrt + Reciprocal, Div(1, Sqrt) or Pow(v, -0.5)."""
    node = sole_consumer(graph, biased, "Sqrt", "Pow")
    if node.op == "Pow":
        require(node.inputs[0] is biased and close(scalar(node.inputs[1]), -0.5), f"{node.name} is not Pow(v, -0.5)")
        return None, node.outputs[0], [node]
    std = node.outputs[0]
    users = consumers(std)
    if len(users) == 1 and not is_graph_output(graph, std):
        user = users[0]
        if user.op == "Reciprocal":
            return None, user.outputs[0], [node, user]
        if user.op == "Div" and user.inputs[1] is std and close(scalar(user.inputs[0]), 1.0, 1e-7):
            return None, user.outputs[0], [node, user]
    return std, None, [node]


def fit_affine(value: np.ndarray, shape: Sequence | None, norm_shape: tuple[int, ...]) -> np.ndarray | None:
    """γ or β broadcast to ``norm_shape`` when it only varies along the normalized axes.

    ``None`` when it varies along a non-normalized axis (it must stay a ``Mul``/``Add`` after the node);
    raises :class:`NoMatch` when broadcasting with it would make the output larger than ``x``.
    """
    k = len(norm_shape)
    rank = None if shape is None else len(shape)
    require(rank is None or value.ndim <= rank, f"affine of shape {value.shape} broadcasts the output beyond x's rank")
    if shape is not None:
        for i, dim in enumerate(value.shape):
            x_dim = shape[rank - value.ndim + i]
            require(not (x_dim == 1 and dim > 1), f"affine of shape {value.shape} broadcasts the output beyond x's shape")
    split = max(0, value.ndim - k)
    tail = (1,) * (k - (value.ndim - split)) + value.shape[split:]
    for dim, norm in zip(tail, norm_shape):
        require(dim in (1, norm), f"affine of shape {value.shape} does not broadcast to {norm_shape}")
    if any(d != 1 for d in value.shape[:split]):
        return None
    return np.ascontiguousarray(np.broadcast_to(value.reshape(tail), norm_shape))
