"""Fold a per-channel (or scalar) constant ``Mul``/``Add`` chain *before* a Conv into its weights and bias.

A LayerNorm that stays decomposed (``--layout nchw``, opset < 17, the portable preset) ends with its
affine ``Mul γ`` and ``Add β``, and in ConvNeXt the next node is a 1×1 Conv. Read along the input
channel axis (1), the chain is ``x·s + t``, and a Conv is linear in its input::

    x ─Mul(s)─ Add(t) ─Conv(W, b)─ y     →   x ─Conv(W·s[c_in], b + Σ_{c_in,k} W·t[c_in])─ y
    x ─Add(t)─ Mul(s) ─Conv(W, b)─ y     →   the same with (s, t·s)
    x ─Mul(s)─Conv(W, b)─ y              →   x ─Conv(W·s[c_in], b)─ y   (any padding: 0·s = 0)

A shift ``t`` folds only when the Conv pads nothing (explicit pads all zero, ``auto_pad`` NOTSET or
VALID): padded positions read 0, not ``t``. When the whole chain cannot fold, the longest run of links
next to the Conv that can is folded. Constants must broadcast per input channel: aligned right against
the Conv input's rank, 1 everywhere but axis 1, where they are 1 or C_in. New constants are created
(shared ones are never mutated); values are computed in float64 and rounded once.

Left alone, each with its own reason: grouped Convs, non-constant weights or bias, intermediates read by
another node or that are graph outputs, operands that are not constants, constants that vary along the
batch or a spatial axis. ConvNeXtTiny ``--layout nchw``: the 22 norms' γ/β go into the following 1×1
convs (298 → 255 nodes).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.core.graph import const_value, consumers, is_graph_output, producer
from onnxmend.passes.folding.channel_affine import (
    LINKS,
    ChannelTransform,
    ConvWeights,
    channel_vector,
    conv_weights,
    remove_links,
    set_weights,
)
from onnxmend.passes.infra.base import MatchingPass, PassContext
from onnxmend.passes.infra.conv_attrs import pads_nothing
from onnxmend.passes.infra.match import NoMatch, require
from onnxmend.passes.infra.naming import Namer

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class InputChain:
    """The Mul/Add links feeding a Conv, in data-flow order, with their composed per-input-channel transform."""

    conv: gs.Node
    weights: ConvWeights  # ``channels`` counts the Conv's *input* channels here
    source: gs.Tensor  # what the first link reads; the Conv reads it after the rewrite
    links: tuple[gs.Node, ...]
    transform: ChannelTransform


class FoldConvInputAffine(MatchingPass):
    name = "fold-conv-input-affine"
    fixes = "Folds a per-channel constant Mul/Add chain that feeds a Conv (a decomposed norm's γ/β) into its weights and bias."
    preconditions = "Conv with constant weights and group 1; an Add folds only into a Conv that pads nothing."

    def anchors(self, graph: gs.Graph) -> list[gs.Node]:
        return [n for n in graph.nodes if n.op == "Conv" and n.inputs]

    def match(self, graph: gs.Graph, conv: gs.Node, ctx: PassContext) -> InputChain | str | None:
        if producer(conv.inputs[0], *LINKS) is None:
            return None
        try:
            return match_input_chain(graph, conv)
        except NoMatch as why:
            return str(why)

    def rewrite(self, graph: gs.Graph, chain: InputChain, ctx: PassContext, names: Namer) -> None:
        conv, tf, cw = chain.conv, chain.transform, chain.weights
        w = cw.weights.astype(np.float64)
        spread = (1, -1) + (1,) * (w.ndim - 2)
        bias = np.zeros(w.shape[0]) if cw.bias is None else cw.bias.astype(np.float64).reshape(-1)
        bias = bias + (w * tf.shift.reshape(spread)).sum(axis=tuple(range(1, w.ndim)))
        set_weights(conv, w * tf.scale.reshape(spread), bias, cw.weights.dtype, names, "input_affine")
        conv.inputs[0] = chain.source
        remove_links(chain.links)


def match_input_chain(graph: gs.Graph, conv: gs.Node) -> InputChain:
    """The longest foldable run of Mul/Add links right before ``conv``; NoMatch when not even one folds."""
    require(int(conv.attrs.get("group", 1)) == 1, f"Conv {conv.name} is grouped")
    outputs = conv_weights(conv)
    w = outputs.weights
    weights = ConvWeights(w, outputs.bias, int(w.shape[1]), w.ndim)
    links: list[tuple[gs.Node, gs.Tensor, np.ndarray]] = []  # nearest the Conv first
    tensor = conv.inputs[0]
    while (link := producer(tensor, *LINKS)) is not None:
        try:
            require(not is_graph_output(graph, tensor), f"{tensor.name} is a graph output")
            require(len(consumers(tensor)) == 1, f"{tensor.name} has other consumers")
            source = _variable_input(link)
            links.append((link, source, channel_vector(link, source, weights, side="input")))
        except NoMatch:
            if not links:
                raise
            break
        tensor = source
    pads_none = pads_nothing(conv)
    for start in range(len(links), 0, -1):  # the longest run whose shift may fold
        run = list(reversed(links[:start]))  # data-flow order
        transform = _compose(run, weights.channels)
        if pads_none or not np.any(transform.shift):
            return InputChain(conv, weights, run[0][1], tuple(n for n, _, _ in run), transform)
    raise NoMatch(f"Conv {conv.name} pads its input, so the Add before it cannot fold")


def _variable_input(link: gs.Node) -> gs.Tensor:
    variables = [t for t in link.inputs if const_value(t) is None]
    require(len(link.inputs) == 2 and len(variables) == 1, f"{link.op} {link.name} has no constant operand")
    return variables[0]


def _compose(run: list[tuple[gs.Node, gs.Tensor, np.ndarray]], channels: int) -> ChannelTransform:
    scale, shift = np.ones(channels), np.zeros(channels)
    for link, _, vector in run:  # x·s: (scale·s, shift·s); x + a: (scale, shift + a)
        if link.op == "Mul":
            scale, shift = scale * vector, shift * vector
        else:
            shift = shift + vector
    return ChannelTransform(scale, shift)


PASS = FoldConvInputAffine
