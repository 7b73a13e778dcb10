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

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.core.graph import const_value, consumers, is_graph_output, rank_of
from onnxmend.passes.infra.base import MatchingPass, PassContext
from onnxmend.passes.infra.match import NoMatch, graph_opset, gs_const, other_input, require, tensor_dtype
from onnxmend.passes.infra.naming import Namer
from onnxmend.passes.norms.group_norm_match import Grouped, match_grouped

MIN_OPSET = 21


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


@dataclass(frozen=True)
class GroupNormMatch:
    grouped: Grouped
    affine: ChannelAffine


class FuseGroupNorm(MatchingPass):
    name = "fuse-group-norm"
    fixes = "Replaces Reshape→InstanceNormalization→Reshape→Mul→Add (torch GroupNorm) by one GroupNormalization."
    preconditions = "opset >= 21 (per-channel scale/bias semantics); static channel count divisible by the groups."

    def anchors(self, graph: gs.Graph) -> list[gs.Node]:
        return [n for n in graph.nodes if n.op == "Reshape"]

    def match(self, graph: gs.Graph, node: gs.Node, ctx: PassContext) -> GroupNormMatch | str | None:
        try:
            grouped = match_grouped(graph, node)
        except NoMatch:
            return None  # an ordinary Reshape
        opset = graph_opset(graph, ctx.opset)
        if opset < MIN_OPSET:
            return f"GroupNormalization needs opset {MIN_OPSET} (per-channel scale); the graph is at {opset}"
        try:
            affine = match_channel_affine(graph, grouped.output, int(grouped.x.shape[1]), rank_of(grouped.x) or 0)
        except NoMatch as exc:
            return str(exc)
        return GroupNormMatch(grouped, affine)

    def rewrite(self, graph: gs.Graph, match: GroupNormMatch, ctx: PassContext, names: Namer) -> None:
        _rewrite(graph, match.grouped, match.affine, names)


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


PASS = FuseGroupNorm
