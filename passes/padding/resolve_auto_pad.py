"""resolve-auto-pad: ``auto_pad`` SAME_UPPER / SAME_LOWER / VALID becomes explicit ``pads``.

Before::

    x[1,3,15,16] ─ Conv(kernel 3, stride 2, auto_pad=SAME_UPPER)

After::

    x[1,3,15,16] ─ Conv(kernel 3, stride 2, pads=[1,0,1,1])

For Conv and pools, per spatial axis: ``total = max((ceil(in / stride) - 1) * stride + (k - 1) * dilation
+ 1 - in, 0)``; SAME_UPPER puts the odd pixel at the end, SAME_LOWER at the beginning. A SAME pool's
output size is ``ceil(in / stride)`` whatever its ``ceil_mode``, and the explicit pads give exactly that
with ``ceil_mode=0``, so ``ceil_mode`` is reset. ConvTranspose follows its spec formula
``total = output_padding + (k - 1) * dilation + 1 - stride`` (independent of the input size). VALID is
all-zero pads. The kernel comes from ``kernel_shape`` or the weight's shape.

Preconditions: the input's spatial dims are static (SAME on Conv/pools). Skipped with a reason: dynamic
dims, unknown kernel, dilated SAME pools (onnxruntime ignores the dilation when it computes SAME pads,
unlike the spec, so explicit pads would change its numbers), ConvTranspose with ``output_shape`` or with
a SAME total below zero. Dilated SAME Conv resolves to the spec's pads; onnxruntime 1.31 cannot run the
original at all ("Dilation not supported for AutoPadType::SAME_UPPER"), and runs the result.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import onnx_graphsurgeon as gs

from onnxmend.core.graph import attr_ints
from onnxmend.passes.infra.base import MatchingPass, PassContext
from onnxmend.passes.infra.conv_attrs import CONV_OPS, POOL_OPS, auto_pad, kernel_size, spatial_rank
from onnxmend.passes.infra.naming import Namer


@dataclass(frozen=True)
class ExplicitPads:
    node: gs.Node
    pads: tuple[int, ...]


class ResolveAutoPad(MatchingPass):
    name = "resolve-auto-pad"
    fixes = "Replaces auto_pad=SAME_UPPER/SAME_LOWER/VALID on Conv/ConvTranspose/pools with explicit pads."
    preconditions = "Static input spatial dims (for SAME on Conv and pools); kernel size known."

    def anchors(self, graph: gs.Graph) -> list[gs.Node]:
        return [n for n in graph.nodes if n.op in CONV_OPS + POOL_OPS and auto_pad(n) != "NOTSET"]

    def match(self, graph: gs.Graph, node: gs.Node, ctx: PassContext) -> ExplicitPads | str:
        pads = explicit_pads(node)
        return pads if isinstance(pads, str) else ExplicitPads(node, tuple(pads))

    def rewrite(self, graph: gs.Graph, match: ExplicitPads, ctx: PassContext, names: Namer) -> None:
        node = match.node
        if auto_pad(node) != "VALID" and node.op in POOL_OPS and node.attrs.get("ceil_mode", 0):
            node.attrs["ceil_mode"] = 0
        node.attrs["pads"] = list(match.pads)
        del node.attrs["auto_pad"]


def explicit_pads(node: gs.Node) -> list[int] | str:
    """The ``pads`` attribute equivalent to the node's ``auto_pad``, or why it cannot be computed."""
    mode = auto_pad(node)
    rank = spatial_rank(node)
    if rank is None:
        return "the number of spatial axes is unknown"
    if node.op == "ConvTranspose" and "output_shape" in node.attrs:
        return "the ConvTranspose has output_shape, from which onnxruntime derives its own pads"
    if mode == "VALID":
        return [0] * (2 * rank)
    if mode not in ("SAME_UPPER", "SAME_LOWER"):
        return f"unknown auto_pad value {mode!r}"
    kernel = kernel_size(node)
    if kernel is None:
        return "the kernel size is unknown (no kernel_shape and the weight shape is dynamic)"
    strides = attr_ints(node, "strides", [1] * rank)
    dilations = attr_ints(node, "dilations", [1] * rank)
    if node.op in POOL_OPS and any(d != 1 for d in dilations):
        return "onnxruntime computes SAME padding for dilated pools without the dilation, unlike the ONNX spec"
    totals = _totals(node, kernel, strides, dilations, rank)
    if isinstance(totals, str):
        return totals
    begins = [t // 2 if mode == "SAME_UPPER" else t - t // 2 for t in totals]
    return begins + [t - b for t, b in zip(totals, begins)]


def _totals(node: gs.Node, kernel: list[int], strides: list[int], dilations: list[int], rank: int) -> list[int] | str:
    spans = [(k - 1) * d + 1 for k, d in zip(kernel, dilations)]
    if node.op == "ConvTranspose":
        extra = attr_ints(node, "output_padding", [0] * rank)
        totals = [o + span - s for o, span, s in zip(extra, spans, strides)]
        if any(t < 0 for t in totals):
            return "SAME on this ConvTranspose needs negative pads (the kernel is smaller than the stride)"
        return totals
    shape = node.inputs[0].shape
    dims = list(shape[2:]) if shape is not None and len(shape) == rank + 2 else []
    if not dims or not all(isinstance(d, int) and d > 0 for d in dims):
        return f"the input's spatial dims are dynamic ({shape})"
    return [max((math.ceil(n / s) - 1) * s + span - n, 0) for n, s, span in zip(dims, strides, spans)]


PASS = ResolveAutoPad
