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

from onnxmend.core.graph import const_value, consumers, is_graph_output
from onnxmend.passes.folding.channel_affine import (
    LINKS,
    ChannelTransform,
    ConvWeights,
    channel_vector,
    conv_weights,
    remove_links,
    scale_output_channels,
    set_weights,
)
from onnxmend.passes.infra.base import MatchingPass, PassContext, Skip
from onnxmend.passes.infra.match import NoMatch, require
from onnxmend.passes.infra.naming import Namer

log = logging.getLogger(__name__)

PRODUCERS = ("Conv", "ConvTranspose")


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

    @property
    def declined(self) -> tuple[Skip, ...]:
        return (Skip(self.stop_node.name or self.stop_node.op, self.stop),) if self.stop and self.stop_node else ()


class FoldConvAffine(MatchingPass):
    name = "fold-conv-affine"
    fixes = "Folds per-channel or scalar constant Mul/Add after a Conv/ConvTranspose into its weights and bias."
    preconditions = "Constant weights and float dtypes; the Conv output and each intermediate read by the next link alone."

    def anchors(self, graph: gs.Graph) -> list[gs.Node]:
        return [n for n in graph.nodes if n.op in PRODUCERS]

    def match(self, graph: gs.Graph, conv: gs.Node, ctx: PassContext) -> AffineChain | str | None:
        if not any(u.op in LINKS for u in consumers(conv.outputs[0])):
            return None
        try:
            chain = match_chain(graph, conv)
        except NoMatch as why:
            return str(why)
        return chain if chain.links else None

    def rewrite(self, graph: gs.Graph, chain: AffineChain, ctx: PassContext, names: Namer) -> None:
        conv, tf, cw = chain.conv, chain.transform, chain.weights
        bias = np.zeros(cw.channels) if cw.bias is None else cw.bias.astype(np.float64).reshape(-1)
        scaled = scale_output_channels(conv, cw.weights.astype(np.float64), tf.scale)
        set_weights(conv, scaled, bias * tf.scale + tf.shift, cw.weights.dtype, names, "affine")
        out = chain.links[-1].outputs[0]
        remove_links(chain.links)
        conv.outputs[0] = out


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


PASS = FoldConvAffine
