"""pointwise-conv-to-matmul: a 1×1 Conv as the MatMul it is, between Transposes, so int8 quantizes it.

Before (the fix preset's NCHW graph, e.g. a ConvNeXt block whose Keras Dense layers became 1×1 Convs)::

    x[N,96,56,56] ─ Conv(W[384,96,1,1], b) ─ y[N,384,56,56]

After::

    x ─ Transpose(0,2,3,1) ─ MatMul(Wᵀ[96,384]) ─ Add(b) ─ Transpose(0,3,1,2) ─ y

``push-transposes`` then cancels the Transposes between neighbouring pointwise layers (LayerNorm, GELU,
the second 1×1 Conv), so a ConvNeXt block keeps one Transpose pair, as the Keras export had it.

Why: dynamic quantization turns a Conv into ConvInteger, which on CPU is slower than fp32 (ConvNeXtTiny,
all 36 pointwise Convs quantized: 0.71× with uint8 weights, 0.33× with int8), while a MatMul becomes
MatMulInteger, which onnxruntime fuses into DynamicQuantizeMatMul (1.69× faster than the fp32 graph,
cosine 0.9998) — measured side by side on a 2-core AMD EPYC with AVX-512 VNNI. So the fix preset does not
run this pass; ``quantize`` runs it (with ``push-transposes``) on the graph it quantizes, gated.

Rules: the weight is a constant [K, C, 1, …, 1]; group 1; every stride 1; no padding. Not handled: strided
or padded 1×1 Convs (a subsampling or padding that MatMul cannot express) and grouped ones (the reason is
recorded per node).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.core.graph import attr_ints, const_value
from onnxmend.passes.infra.base import MatchingPass, PassContext
from onnxmend.passes.infra.conv_attrs import pads_nothing
from onnxmend.passes.infra.naming import Namer


@dataclass(frozen=True)
class Pointwise:
    conv: gs.Node
    weight: np.ndarray  # [K, C, 1, ..., 1]


class PointwiseConvToMatmul(MatchingPass):
    """A 1×1 Conv is a MatMul over the channel axis::

        x ─ Conv(W[K,C,1,1], b) ─   →   x ─ Transpose ─ MatMul(Wᵀ) ─ Add(b) ─ Transpose ─
    """

    name = "pointwise-conv-to-matmul"
    fixes = ("Spells a 1×1 Conv as Transpose, MatMul, Transpose so dynamic int8 quantizes it as a fast MatMul "
             "instead of a slow ConvInteger (run by quantize, not by the fix preset).")
    preconditions = "The Conv's weight is a constant 1×1 kernel, group 1, strides 1, no padding."

    def anchors(self, graph: gs.Graph) -> list[gs.Node]:
        return [n for n in graph.nodes if n.op == "Conv"]

    def match(self, graph: gs.Graph, conv: gs.Node, ctx: PassContext) -> Pointwise | str | None:
        weight = const_value(conv.inputs[1]) if len(conv.inputs) > 1 else None
        if weight is None or weight.ndim < 3 or any(d != 1 for d in weight.shape[2:]):
            return None  # not a constant 1×1 kernel: no candidate
        if not np.issubdtype(weight.dtype, np.floating):
            return f"the weight is {weight.dtype}, not float"
        if int(conv.attrs.get("group", 1)) != 1:
            return "a grouped 1×1 Conv is not one MatMul"
        if any(s != 1 for s in attr_ints(conv, "strides", [])):
            return "a strided 1×1 Conv subsamples, which MatMul does not"
        if not pads_nothing(conv):
            return "a padded 1×1 Conv adds a border, which MatMul does not"
        bias = conv.inputs[2] if len(conv.inputs) > 2 and conv.inputs[2].name else None
        if bias is not None and const_value(bias) is None:
            return "the bias is not a constant"
        return Pointwise(conv, weight)

    def rewrite(self, graph: gs.Graph, match: Pointwise, ctx: PassContext, names: Namer) -> None:
        conv, rank = match.conv, match.weight.ndim
        stem = conv.name or conv.outputs[0].name
        x, y = conv.inputs[0], conv.outputs[0]
        to_last = [0, *range(2, rank), 1]
        to_first = [0, rank - 1, *range(1, rank - 1)]
        last = gs.Variable(names(f"{stem}/channels_last"), dtype=x.dtype)
        graph.nodes.append(gs.Node("Transpose", names(f"{stem}/to_channels_last"), {"perm": to_last}, [x], [last]))
        matrix = gs.Constant(names(f"{stem}/weight_t"), np.ascontiguousarray(match.weight.reshape(match.weight.shape[:2]).T))
        product = gs.Variable(names(f"{stem}/matmul"), dtype=x.dtype)
        graph.nodes.append(gs.Node("MatMul", names(f"{stem}/MatMul"), {}, [last, matrix], [product]))
        if len(conv.inputs) > 2 and conv.inputs[2].name:
            biased = gs.Variable(names(f"{stem}/biased"), dtype=x.dtype)
            graph.nodes.append(gs.Node("Add", names(f"{stem}/bias"), {}, [product, conv.inputs[2]], [biased]))
            product = biased
        conv.outputs.clear()
        graph.nodes.append(gs.Node("Transpose", names(f"{stem}/to_channels_first"), {"perm": to_first}, [product], [y]))


PASS = PointwiseConvToMatmul
