"""Fuse the exporters' GroupNorm spellings into one ``GroupNormalization`` node (opset >= 21 only).

Before (torch legacy and dynamo exporters; the ReduceMean spelling once fuse-layer-norm has turned its
statistics into a ``LayerNormalization`` over the last axis of the grouped tensor)::

    x[N,C,H,W] ─Reshape[N,G,-1]─ InstanceNormalization(1, 0) | LayerNormalization(axis=-1) ─┐
                                      Reshape[Shape(x)] ─ Mul γ[C,1,1] ─ Add β[C,1,1] ─ y ◀──┘

After::

    x ─GroupNormalization(num_groups=G, epsilon)(γ[C], β[C])─ y

Only opset 21 semantics are emitted: GroupNormalization-18 took per-*group* scale and bias, and a graph
below opset 21 is left as it is (with a reason). One group is a LayerNormalization over (C,H,W);
fuse-layer-norm, which runs first, takes that case.

Not handled: affines that are not per-channel constants, a Reshape back to anything but x's shape,
inner normalizations with a non-trivial scale/bias.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.passes.base import Pass, PassContext, PassResult
from onnxmend.passes.norm_match import (
    Namer, NoMatch, const_value, consumers, gs_const, graph_opset, is_graph_output, other_input,
    producer, rank_of, require, sole_consumer, tensor_dtype,
)

log = logging.getLogger(__name__)

MIN_OPSET = 21


@dataclass(frozen=True)
class Grouped:
    """``Reshape → per-group normalization → Reshape back``; ``output`` has the shape of ``x``."""

    x: gs.Tensor
    groups: int
    epsilon: float
    output: gs.Variable
    nodes: tuple[gs.Node, ...]


def match_grouped(graph: gs.Graph, reshape: gs.Node) -> Grouped:
    """Match the grouped normalization that starts at ``reshape`` (x → [N, G, -1])."""
    x = reshape.inputs[0]
    target = const_value(reshape.inputs[1])
    require(target is not None and target.size == 3, f"{reshape.name} does not reshape to a constant [N, G, -1]")
    rank = rank_of(x)
    require(rank is not None and rank >= 3, f"rank of {x.name} is unknown or below 3")
    groups = int(target[1])
    require(int(target[0]) in (0, x.shape[0]) and groups > 0, f"{reshape.name} does not keep the batch axis first")
    channels = x.shape[1]
    require(isinstance(channels, int) and channels % groups == 0, f"channels of {x.name} are not static or not divisible by {groups}")
    require(int(target[2]) == -1 or _known_size(x, int(target[2]) * groups), f"{reshape.name} does not flatten whole groups")
    grouped = reshape.outputs[0]
    inner = sole_consumer(graph, grouped, "InstanceNormalization", "LayerNormalization")
    epsilon = _inner_epsilon(inner)
    normalized = inner.outputs[0]
    back = sole_consumer(graph, normalized, "Reshape")
    require(_restores_shape(back, x), f"{back.name} does not reshape back to the shape of {x.name}")
    return Grouped(x, groups, epsilon, back.outputs[0], (reshape, inner, back))


def _known_size(x: gs.Tensor, flat: int) -> bool:
    dims = x.shape[1:]
    return all(isinstance(d, int) for d in dims) and int(np.prod(dims)) == flat


def _inner_epsilon(inner: gs.Node) -> float:
    """Epsilon of an InstanceNormalization / LayerNormalization(axis=-1) that has a unit affine."""
    if inner.op == "LayerNormalization":
        require(int(inner.attrs.get("axis", -1)) in (-1, 2), f"{inner.name} does not normalize the last axis")
        require(all(not t.outputs for t in inner.outputs[1:]), f"{inner.name} has its Mean/InvStdDev outputs in use")
    scale = const_value(inner.inputs[1]) if len(inner.inputs) > 1 else None
    bias = const_value(inner.inputs[2]) if len(inner.inputs) > 2 and inner.inputs[2].name else np.zeros(1)
    require(scale is not None and bool(np.all(scale == 1)), f"{inner.name} has a scale other than ones")
    require(bias is not None and bool(np.all(bias == 0)), f"{inner.name} has a bias other than zeros")
    return float(inner.attrs.get("epsilon", 1e-5))


def _restores_shape(back: gs.Node, x: gs.Tensor) -> bool:
    shape_node = producer(back.inputs[1], "Shape")
    if shape_node is not None:
        return shape_node.inputs[0] is x and "start" not in shape_node.attrs and "end" not in shape_node.attrs
    target = const_value(back.inputs[1])
    dims = x.shape
    if target is None or dims is None or len(target) != len(dims) or not all(isinstance(d, int) for d in dims):
        return False
    resolved = [dims[i] if (t == 0 and not back.attrs.get("allowzero", 0)) else int(t) for i, t in enumerate(target)]
    if resolved.count(-1) == 1:
        known = int(np.prod([d for d in resolved if d != -1]))
        resolved[resolved.index(-1)] = int(np.prod(dims)) // max(known, 1)
    return resolved == list(dims)


@dataclass(frozen=True)
class ChannelAffine:
    """Per-channel γ and β read from the ``Mul``/``Add`` after a grouped normalization."""

    scale: np.ndarray
    bias: np.ndarray
    output: gs.Variable
    nodes: tuple[gs.Node, ...]


def match_channel_affine(graph: gs.Graph, tensor: gs.Variable, channels: int, rank: int) -> ChannelAffine:
    """``Mul γ`` then ``Add β`` with γ, β of shape [C, 1, ..] (either may be missing)."""
    scale = np.ones(channels, np.float32)
    bias = np.zeros(channels, np.float32)
    nodes: list[gs.Node] = []
    out = tensor
    for op in ("Mul", "Add"):
        users = consumers(out)
        if len(users) != 1 or users[0].op != op or is_graph_output(graph, out):
            continue
        value = const_value(other_input(users[0], out))
        if value is None:
            break
        per_channel = _per_channel(value, channels, rank)
        require(per_channel is not None, f"{op} {users[0].name} constant of shape {value.shape} is not per-channel")
        if op == "Mul":
            scale = per_channel
        else:
            bias = per_channel
        nodes.append(users[0])
        out = users[0].outputs[0]
    return ChannelAffine(scale, bias, out, tuple(nodes))


def _per_channel(value: np.ndarray, channels: int, rank: int) -> np.ndarray | None:
    """A [C,1,..] (or scalar) constant on an [N,C,...] tensor as a length-C vector."""
    if value.size == 1:
        return np.full(channels, value.reshape(()), value.dtype)
    shape = (1,) * (rank - value.ndim) + value.shape
    if value.ndim > rank or shape[0] != 1 or shape[1] != channels or any(d != 1 for d in shape[2:]):
        return None
    return value.reshape(channels)


class FuseGroupNorm(Pass):
    name = "fuse-group-norm"
    fixes = "Replaces Reshape→InstanceNormalization→Reshape→Mul→Add (torch GroupNorm) by one GroupNormalization."
    preconditions = "opset >= 21 (per-channel scale/bias semantics); static channel count divisible by the groups."

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        result = PassResult()
        opset = graph_opset(graph, ctx.opset)
        namer = Namer(graph)
        for node in list(graph.nodes):
            if node.op != "Reshape" or not node.outputs:
                continue
            try:
                grouped = match_grouped(graph, node)
            except NoMatch:
                continue  # an ordinary Reshape
            if opset < MIN_OPSET:
                result.skip(node, f"GroupNormalization needs opset {MIN_OPSET} (per-channel scale); the graph is at {opset}")
                continue
            try:
                affine = match_channel_affine(graph, grouped.output, int(grouped.x.shape[1]), rank_of(grouped.x) or 0)
            except NoMatch as exc:
                result.skip(node, str(exc))
                continue
            _rewrite(graph, grouped, affine, namer)
            result.changed += 1
        return result


def _rewrite(graph: gs.Graph, grouped: Grouped, affine: ChannelAffine, namer: Namer) -> None:
    dtype = tensor_dtype(grouped.x) or np.dtype(np.float32)
    name = namer(f"{grouped.nodes[0].name or 'group_norm'}_fused")
    scale = gs_const(namer(f"{name}.scale"), affine.scale.astype(dtype))
    bias = gs_const(namer(f"{name}.bias"), affine.bias.astype(dtype))
    out = affine.output
    for node in grouped.nodes + affine.nodes:
        node.inputs.clear()
        node.outputs.clear()
    graph.nodes.append(gs.Node(
        "GroupNormalization", name, attrs={"epsilon": grouped.epsilon, "num_groups": grouped.groups},
        inputs=[grouped.x, scale, bias], outputs=[out],
    ))


PASSES: tuple[type[Pass], ...] = (FuseGroupNorm,)
