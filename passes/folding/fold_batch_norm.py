"""Fold inference BatchNormalization into the producer's constant weights, or into a Mul + Add.

With ``s = γ / sqrt(var + eps)`` and ``t = β − mean · s``, per output channel ``c``::

    x ─Conv(W, b)─ BatchNormalization ─ y      →   x ─Conv(W·s[c], b·s + t)─ y
    x ─ConvTranspose(W[Cin, Cout/g, k..], b)─ BN   →   W scaled along its *second* axis, per group
    x ─Gemm(A, B, C)─ BN                       →   Gemm(A, B·s, (β_gemm·C)·s + t, beta=1)
    x[M,K] ─MatMul(W[K,N])─ BN                 →   MatMul(W·s) ─ Add(t)
    x ─(anything else)─ BN                     →   Mul(s[C,1,1]) ─ Add(t[C,1,1])

Folding needs the producer's output to be read by the BN alone and its weights (and bias) to be
constants; otherwise the BN becomes the Mul + Add form and the reason is recorded as a note. A BN in
training mode, or whose running mean/var outputs are in use, or whose parameters are not constants, is
left alone with a reason.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.core.graph import const_value, producer, rank_of
from onnxmend.passes.folding.channel_affine import ChannelTransform, scale_output_channels, set_weights
from onnxmend.passes.infra.base import MatchingPass, PassContext
from onnxmend.passes.infra.match import gs_const, private
from onnxmend.passes.infra.naming import Namer

FOLDABLE = ("Conv", "ConvTranspose", "Gemm", "MatMul")


@dataclass(frozen=True)
class BatchNormFold:
    """A BN as a per-channel transform; folded into ``producer`` when ``why_not`` is empty, else Mul+Add."""

    bn: gs.Node
    transform: ChannelTransform
    producer: gs.Node | None
    weights: np.ndarray | None
    why_not: str

    @property
    def note(self) -> str:
        return f"{self.bn.name}: not folded ({self.why_not}); rewritten as Mul+Add" if self.why_not else ""


class FoldBatchNorm(MatchingPass):
    name = "fold-batch-norm"
    fixes = "Folds inference BatchNormalization into Conv/ConvTranspose/Gemm/MatMul weights, or turns it into Mul+Add."
    preconditions = "BN in inference mode with constant parameters; for folding, constant weights read by the BN alone."

    def anchors(self, graph: gs.Graph) -> list[gs.Node]:
        return [n for n in graph.nodes if n.op == "BatchNormalization"]

    def match(self, graph: gs.Graph, bn: gs.Node, ctx: PassContext) -> BatchNormFold | str:
        transform = bn_transform(bn)
        if isinstance(transform, str):
            return f"not folded: {transform}"
        why_not = _fold_blocker(graph, bn, transform)
        if why_not and rank_of(bn.inputs[0]) is None:
            return f"not folded ({why_not}) and the rank of its input is unknown"
        prod = producer(bn.inputs[0])
        weights = None if why_not else const_value(prod.inputs[1])
        return BatchNormFold(bn, transform, None if why_not else prod, weights, why_not)

    def rewrite(self, graph: gs.Graph, match: BatchNormFold, ctx: PassContext, names: Namer) -> None:
        if match.why_not:
            _to_mul_add(graph, match.bn, match.transform, names)
            return
        writer = _WRITERS[match.producer.op](graph, match.producer, match.weights, match.transform, names)
        out = match.bn.outputs[0]
        match.bn.inputs.clear()
        match.bn.outputs.clear()
        writer.outputs[0] = out


def bn_transform(bn: gs.Node) -> ChannelTransform | str:
    """The per-channel transform of an inference BN, or why it cannot be read as one."""
    if int(bn.attrs.get("training_mode", 0)):
        return "training_mode=1"
    if any(t.outputs for t in bn.outputs[1:]):
        return "its running mean/var outputs are in use"
    values = [const_value(t) for t in bn.inputs[1:5]]
    if len(values) != 4 or any(v is None for v in values):
        return "scale, bias, mean or variance is not a constant"
    gamma, beta, mean, var = (v.astype(np.float64).reshape(-1) for v in values)
    scale = gamma / np.sqrt(var + float(bn.attrs.get("epsilon", 1e-5)))
    return ChannelTransform(scale, beta - mean * scale)


def _fold_blocker(graph: gs.Graph, bn: gs.Node, tf: ChannelTransform) -> str:
    """Why the BN cannot fold into its producer; empty when it can."""
    x = bn.inputs[0]
    prod = producer(x)
    if prod is None or prod.op not in FOLDABLE:
        return f"its input comes from {prod.op if prod else 'a graph input'}, not {'/'.join(FOLDABLE)}"
    if not private(graph, x, [bn]):
        return f"{prod.op} {prod.name} output has other consumers"
    weights = const_value(prod.inputs[1]) if len(prod.inputs) > 1 else None
    if weights is None or any(const_value(t) is None for t in prod.inputs[2:] if t.name):
        return f"{prod.op} {prod.name} weights are not constants"
    return _shape_blocker(prod, weights, tf)


def _shape_blocker(prod: gs.Node, w: np.ndarray, tf: ChannelTransform) -> str:
    channels = tf.scale.size
    if prod.op == "Conv" and w.shape[0] != channels:
        return f"Conv {prod.name} has {w.shape[0]} output channels, the BN {channels}"
    if prod.op == "ConvTranspose" and w.shape[1] * int(prod.attrs.get("group", 1)) != channels:
        return f"ConvTranspose {prod.name} has {w.shape[1] * int(prod.attrs.get('group', 1))} output channels, the BN {channels}"
    if prod.op == "Gemm":
        n = w.shape[0] if int(prod.attrs.get("transB", 0)) else w.shape[1]
        if n != channels:
            return f"Gemm {prod.name} has {n} outputs, the BN {channels}"
    if prod.op == "MatMul" and (w.ndim != 2 or rank_of(prod.inputs[0]) != 2 or w.shape[1] != channels):
        return f"MatMul {prod.name} is not [M,K]×[K,C] with C = the BN's channels"
    return ""


def _bias(prod: gs.Node, channels: int) -> np.ndarray:
    if len(prod.inputs) > 2 and prod.inputs[2].name:
        return const_value(prod.inputs[2]).astype(np.float64)
    return np.zeros(channels, np.float64)


def _fold_conv(graph: gs.Graph, prod: gs.Node, w: np.ndarray, tf: ChannelTransform, namer: Namer) -> gs.Node:
    """Conv and ConvTranspose: each output channel's weights and bias scaled, the shift added to the bias."""
    scaled = scale_output_channels(prod, w.astype(np.float64), tf.scale)
    set_weights(prod, scaled, _bias(prod, tf.scale.size) * tf.scale + tf.shift, w.dtype, namer)
    return prod


def _fold_gemm(graph: gs.Graph, prod: gs.Node, w: np.ndarray, tf: ChannelTransform, namer: Namer) -> gs.Node:
    trans_b = int(prod.attrs.get("transB", 0))
    n = w.shape[0] if trans_b else w.shape[1]
    scaled = w.astype(np.float64) * (tf.scale[:, None] if trans_b else tf.scale[None, :])
    bias = float(prod.attrs.get("beta", 1.0)) * _bias(prod, n)
    set_weights(prod, scaled, bias * tf.scale + tf.shift, w.dtype, namer)
    prod.attrs["beta"] = 1.0
    return prod


def _fold_matmul(graph: gs.Graph, prod: gs.Node, w: np.ndarray, tf: ChannelTransform, namer: Namer) -> gs.Node:
    prod.inputs[1] = gs_const(namer(f"{prod.name}.W_bn"), (w.astype(np.float64) * tf.scale).astype(w.dtype))
    shift = gs_const(namer(f"{prod.name}.bn_shift_value"), tf.shift.astype(w.dtype))
    add = gs.Node("Add", namer(f"{prod.name}.bn_shift"), inputs=[prod.outputs[0], shift],
                  outputs=[gs.Variable(namer(f"{prod.name}.shifted"), dtype=prod.outputs[0].dtype)])
    graph.nodes.append(add)
    return add


_WRITERS = {"Conv": _fold_conv, "ConvTranspose": _fold_conv, "Gemm": _fold_gemm, "MatMul": _fold_matmul}


def _to_mul_add(graph: gs.Graph, bn: gs.Node, tf: ChannelTransform, namer: Namer) -> None:
    rank = rank_of(bn.inputs[0])
    dtype = np.dtype(bn.inputs[0].dtype or np.float32)
    shape = (-1,) + (1,) * max(rank - 2, 0)
    x, out = bn.inputs[0], bn.outputs[0]
    bn.inputs.clear()
    bn.outputs.clear()
    scaled = gs.Variable(namer(f"{bn.name}.scaled"), dtype=dtype)
    scale = gs_const(namer(f"{bn.name}.scale"), tf.scale.reshape(shape).astype(dtype))
    shift = gs_const(namer(f"{bn.name}.shift"), tf.shift.reshape(shape).astype(dtype))
    graph.nodes.append(gs.Node("Mul", namer(f"{bn.name}.mul"), inputs=[x, scale], outputs=[scaled]))
    graph.nodes.append(gs.Node("Add", namer(f"{bn.name}.add"), inputs=[scaled, shift], outputs=[out]))


PASS = FoldBatchNorm
