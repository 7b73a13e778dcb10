"""Fold a per-channel (or scalar) constant ``Mul``/``Add`` chain after a Conv into its weights and bias.

tf2onnx spells Keras BatchNormalization as ``Mul``/``Add`` after the Conv, and ConvNeXt's LayerScale is a
per-channel ``Mul``; each one is a full elementwise pass over the activation. Read along the output
channel axis (1), the chain is ``y·s + t`` with ``s`` and ``t`` composed link by link::

    x ─Conv(W, b)─ Mul(s) ─ Add(a) ─ y          →   x ─Conv(W·s[c], b·s + a)─ y
    x ─Conv(W, b)─ Add(a) ─ Mul(s) ─ y          →   x ─Conv(W·s[c], (b + a)·s)─ y
    x ─Conv(W)─ Add(a) ─ y                      →   x ─Conv(W, a)─ y          (a bias is created)
    x ─ConvTranspose(W[Cin, Cout/g, k..], b)─ Mul(s)   →   W scaled along its *second* axis, per group

A constant folds when, aligned right against the Conv output's rank (the rank of ``W``), it is 1 on
every axis but the channel axis, where it is 1 or C: ``[C,1,1]``, ``[1,C,1,1]`` and scalars fold; a
``[C]`` on NCHW broadcasts over W, not channels, and does not. New weight and bias constants are
created (shared constants are never mutated); values are computed in float64 and rounded once.

Left alone, each with its own reason: a Conv output (or intermediate Mul/Add output) that another node
reads or that is a graph output, an operand that is not an initializer or ``Constant``, a constant that
varies along the batch or a spatial axis, non-constant weights or bias, non-float dtypes, an empty
constant. Non-goals: ``Sub``/``Div`` spellings, Gemm/MatMul producers (fold-batch-norm covers BN there).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.passes.base import Pass, PassContext, PassResult
from onnxmend.passes.batch_norm import ChannelTransform, set_weights
from onnxmend.passes.norm_match import Namer, NoMatch, const_value, consumers, is_graph_output, require

log = logging.getLogger(__name__)

PRODUCERS = ("Conv", "ConvTranspose")
LINKS = ("Mul", "Add")


@dataclass(frozen=True)
class ConvWeights:
    """The constant weights and bias of one Conv/ConvTranspose, and its output's channel count and rank."""

    weights: np.ndarray
    bias: np.ndarray | None
    channels: int
    rank: int


@dataclass(frozen=True)
class AffineChain:
    """A Conv and the Mul/Add nodes after it that fold, composed into one per-channel transform."""

    conv: gs.Node
    weights: ConvWeights
    links: tuple[gs.Node, ...]
    transform: ChannelTransform
    # Why the chain stops at the node after the last link (empty when that node is no Mul/Add).
    stop: str
    stop_node: gs.Node | None


class FoldConvAffine(Pass):
    name = "fold-conv-affine"
    fixes = "Folds per-channel or scalar constant Mul/Add after a Conv/ConvTranspose into its weights and bias."
    preconditions = "Constant weights and float dtypes; the Conv output and each intermediate read by the next link alone."

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        result = PassResult()
        namer = Namer(graph)
        for conv in [n for n in graph.nodes if n.op in PRODUCERS]:
            if not any(u.op in LINKS for u in consumers(conv.outputs[0])):
                continue
            try:
                chain = match_chain(graph, conv)
            except NoMatch as why:
                result.skip(conv, str(why))
                continue
            if chain.stop and chain.stop_node is not None:
                result.skip(chain.stop_node, chain.stop)
            if chain.links:
                _rewrite(chain, namer)
                result.changed += 1
                log.debug("folded %s into %s", [n.name for n in chain.links], conv.name)
        return result


def match_chain(graph: gs.Graph, conv: gs.Node) -> AffineChain:
    """The longest foldable Mul/Add chain after ``conv``; raises :class:`NoMatch` when not even one link folds."""
    weights = conv_weights(conv)
    links: list[gs.Node] = []
    scale, shift = np.ones(weights.channels), np.zeros(weights.channels)
    tensor = conv.outputs[0]
    while True:
        try:
            link = _next_link(graph, tensor)
            if link is None:
                stop, stop_node = "", None
                break
            vector = channel_vector(link, tensor, weights)
        except NoMatch as why:
            if not links:
                raise
            stop, stop_node = str(why), next(u for u in consumers(tensor) if u.op in LINKS)
            break
        # y·s: (scale·s, shift·s); y + a: (scale, shift + a)
        if link.op == "Mul":
            scale, shift = scale * vector, shift * vector
        else:
            shift = shift + vector
        links.append(link)
        tensor = link.outputs[0]
    return AffineChain(conv, weights, tuple(links), ChannelTransform(scale, shift), stop, stop_node)


def conv_weights(conv: gs.Node) -> ConvWeights:
    w = const_value(conv.inputs[1]) if len(conv.inputs) > 1 else None
    require(w is not None, f"{conv.op} {conv.name} weights are not constants")
    require(np.issubdtype(w.dtype, np.floating), f"{conv.op} {conv.name} weights are {w.dtype}, not float")
    bias = None
    if len(conv.inputs) > 2 and conv.inputs[2].name:
        bias = const_value(conv.inputs[2])
        require(bias is not None, f"{conv.op} {conv.name} bias is not a constant")
    groups = int(conv.attrs.get("group", 1))
    channels = w.shape[0] if conv.op == "Conv" else w.shape[1] * groups
    return ConvWeights(w, bias, int(channels), w.ndim)


def _next_link(graph: gs.Graph, tensor: gs.Tensor) -> gs.Node | None:
    """The Mul/Add reading ``tensor``, or ``None`` when nothing Mul/Add reads it."""
    users = consumers(tensor)
    links = [u for u in users if u.op in LINKS]
    if not links:
        return None
    # A residual Add or a swish Mul is no candidate: say so rather than that the tensor is shared.
    operands = [t for t in links[0].inputs if t is not tensor]
    require(
        any(const_value(t) is not None for u in links for t in u.inputs if t is not tensor),
        f"{links[0].op} {links[0].name} operand {operands[0].name if operands else tensor.name} is not a constant",
    )
    require(not is_graph_output(graph, tensor), f"{tensor.name} is a graph output")
    require(len(users) == 1, f"{tensor.name} has other consumers ({', '.join(sorted(u.op for u in users))})")
    return users[0]


def channel_vector(link: gs.Node, tensor: gs.Tensor, weights: ConvWeights, side: str = "output") -> np.ndarray:
    """The link's constant as a float64 vector over the Conv's ``side`` channels, when it is per-channel or scalar."""
    what = f"{link.op} {link.name}"
    others = [t for t in link.inputs if t is not tensor]
    require(len(link.inputs) == 2 and len(others) == 1, f"{what} reads {tensor.name} twice")
    value = const_value(others[0])
    require(value is not None, f"{what} operand {others[0].name} is not a constant")
    require(value.dtype == weights.weights.dtype, f"{what} constant is {value.dtype}, the weights {weights.weights.dtype}")
    require(value.size > 0, f"{what} constant is empty (shape {value.shape})")
    rank = weights.rank
    require(value.ndim <= rank, f"{what} constant of shape {value.shape} raises the rank-{rank} Conv {side}'s rank")
    aligned = (1,) * (rank - value.ndim) + value.shape
    require(aligned[0] == 1, f"{what} constant of shape {value.shape} varies along the batch axis")
    spatial = [i for i in range(2, rank) if aligned[i] != 1]
    if spatial:
        raise NoMatch(
            f"{what} constant of shape {value.shape} varies along spatial axis {spatial[0]} of the rank-{rank} "
            f"{side} (a [C] constant broadcasts over the last axis, not channels)"
        )
    require(
        aligned[1] in (1, weights.channels),
        f"{what} constant has {aligned[1]} channels, the {weights.channels}-channel {side} would broadcast",
    )
    return np.broadcast_to(value.astype(np.float64).reshape(-1), (weights.channels,))


def _rewrite(chain: AffineChain, namer: Namer) -> None:
    conv, tf, cw = chain.conv, chain.transform, chain.weights
    dtype = cw.weights.dtype
    bias = np.zeros(cw.channels) if cw.bias is None else cw.bias.astype(np.float64).reshape(-1)
    set_weights(conv, _scaled(conv, cw, tf.scale), bias * tf.scale + tf.shift, dtype, namer, "affine")
    out = chain.links[-1].outputs[0]
    for link in chain.links:
        link.inputs.clear()
        link.outputs.clear()
    conv.outputs[0] = out


def _scaled(conv: gs.Node, cw: ConvWeights, scale: np.ndarray) -> np.ndarray:
    w = cw.weights.astype(np.float64)
    if conv.op == "Conv":
        return w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
    # ConvTranspose: output channel o = g·(Cout/g) + j lives at W[g·Cin/g : (g+1)·Cin/g, j].
    groups = int(conv.attrs.get("group", 1))
    c_in, c_out_g = w.shape[0], w.shape[1]
    grouped = w.reshape((groups, c_in // groups, c_out_g) + w.shape[2:])
    return (grouped * scale.reshape((groups, 1, c_out_g) + (1,) * (w.ndim - 2))).reshape(w.shape)


PASSES: tuple[type[Pass], ...] = (FoldConvAffine,)
