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

Also here: :func:`inspect_padding`, the padding findings for ``onnxmend inspect``.
"""

from __future__ import annotations

import collections
import logging
import math

import onnx
import onnx_graphsurgeon as gs

from onnxmend.passes.base import Pass, PassContext, PassResult
from onnxmend.passes.pad_utils import CONV_OPS, POOL_OPS, attr_ints, auto_pad, kernel_size, spatial_rank

log = logging.getLogger(__name__)


class ResolveAutoPad(Pass):
    name = "resolve-auto-pad"
    fixes = "Replaces auto_pad=SAME_UPPER/SAME_LOWER/VALID on Conv/ConvTranspose/pools with explicit pads."
    preconditions = "Static input spatial dims (for SAME on Conv and pools); kernel size known."

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        result = PassResult()
        for node in graph.nodes:
            if node.op not in CONV_OPS + POOL_OPS or auto_pad(node) == "NOTSET":
                continue
            pads = explicit_pads(node)
            if isinstance(pads, str):
                result.skip(node, pads)
                continue
            if auto_pad(node) != "VALID" and node.op in POOL_OPS and node.attrs.get("ceil_mode", 0):
                node.attrs["ceil_mode"] = 0
            node.attrs["pads"] = pads
            del node.attrs["auto_pad"]
            result.changed += 1
        return result


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


def inspect_padding(model: onnx.ModelProto) -> dict[str, int]:
    """Padding findings: Pad nodes, Pads a fold could remove, auto_pad users, asymmetric pads."""
    producers = {o: n for n in model.graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = collections.defaultdict(list)
    for n in model.graph.node:
        for i in n.input:
            consumers[i].append(n)
    constants = {t.name for t in model.graph.initializer}
    findings = {"pad_nodes": 0, "pads_feeding_conv_or_pool": 0, "computed_pads": 0,
                "auto_pad_nodes": 0, "asymmetric_pads_nodes": 0}
    for node in model.graph.node:
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if node.op_type == "Pad":
            findings["pad_nodes"] += 1
            findings["pads_feeding_conv_or_pool"] += _feeds_conv_or_pool(node, consumers)
            pads_in = node.input[1] if len(node.input) > 1 else ""
            producer = producers.get(pads_in)
            findings["computed_pads"] += bool(pads_in) and pads_in not in constants and (
                producer is None or producer.op_type != "Constant")
        if node.op_type not in CONV_OPS + POOL_OPS:
            continue
        mode = attrs.get("auto_pad", b"NOTSET")
        findings["auto_pad_nodes"] += (mode.decode() if isinstance(mode, bytes) else mode) != "NOTSET"
        pads = list(attrs.get("pads", []))
        findings["asymmetric_pads_nodes"] += pads[: len(pads) // 2] != pads[len(pads) // 2:]
    return findings


def _feeds_conv_or_pool(pad: onnx.NodeProto, consumers: dict[str, list[onnx.NodeProto]]) -> bool:
    users = consumers.get(pad.output[0], [])
    if len(users) == 1 and users[0].op_type == "Transpose":
        users = consumers.get(users[0].output[0], [])
    return any(u.op_type in CONV_OPS + POOL_OPS for u in users)


PASSES: tuple[type[Pass], ...] = (ResolveAutoPad,)
