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

import logging
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.passes.base import Pass, PassContext, PassResult
from onnxmend.passes.norm_match import Namer, const_value, gs_const, private, producer, rank_of

log = logging.getLogger(__name__)

FOLDABLE = ("Conv", "ConvTranspose", "Gemm", "MatMul")


@dataclass(frozen=True)
class ChannelTransform:
    """The BN as ``y = x·scale + shift`` along axis 1 (float64, length C)."""

    scale: np.ndarray
    shift: np.ndarray


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


class FoldBatchNorm(Pass):
    name = "fold-batch-norm"
    fixes = "Folds inference BatchNormalization into Conv/ConvTranspose/Gemm/MatMul weights, or turns it into Mul+Add."
    preconditions = "BN in inference mode with constant parameters; for folding, constant weights read by the BN alone."

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        result = PassResult()
        namer = Namer(graph)
        for bn in [n for n in graph.nodes if n.op == "BatchNormalization"]:
            transform = bn_transform(bn)
            if isinstance(transform, str):
                result.skip(bn, f"not folded: {transform}")
                continue
            why_not = _fold(graph, bn, transform, namer)
            if why_not and not _to_mul_add(graph, bn, transform, namer):
                result.skip(bn, f"not folded ({why_not}) and the rank of its input is unknown")
                continue
            if why_not:
                result.notes.append(f"{bn.name}: not folded ({why_not}); rewritten as Mul+Add")
            result.changed += 1
        return result


def _fold(graph: gs.Graph, bn: gs.Node, tf: ChannelTransform, namer: Namer) -> str:
    """Fold into the producer; empty string on success, else why not."""
    x = bn.inputs[0]
    prod = producer(x)
    if prod is None or prod.op not in FOLDABLE:
        return f"its input comes from {prod.op if prod else 'a graph input'}, not {'/'.join(FOLDABLE)}"
    if not private(graph, x, [bn]):
        return f"{prod.op} {prod.name} output has other consumers"
    weights = const_value(prod.inputs[1])
    if weights is None or any(const_value(t) is None for t in prod.inputs[2:] if t.name):
        return f"{prod.op} {prod.name} weights are not constants"
    folder = {"Conv": _fold_conv, "ConvTranspose": _fold_conv_transpose, "Gemm": _fold_gemm, "MatMul": _fold_matmul}
    writer = folder[prod.op](graph, prod, weights, tf, namer)
    if isinstance(writer, str):
        return writer
    out = bn.outputs[0]
    bn.inputs.clear()
    bn.outputs.clear()
    writer.outputs[0] = out
    return ""


def _bias(prod: gs.Node, channels: int) -> np.ndarray:
    if len(prod.inputs) > 2 and prod.inputs[2].name:
        return const_value(prod.inputs[2]).astype(np.float64)
    return np.zeros(channels, np.float64)


def set_weights(prod: gs.Node, weights: np.ndarray, bias: np.ndarray, dtype: np.dtype, namer: Namer,
                label: str = "bn") -> None:
    """Give ``prod`` new weight and bias constants (named ``W_<label>``/``B_<label>``); shared ones stay untouched."""
    w = gs_const(namer(f"{prod.name}.W_{label}"), weights.astype(dtype))
    b = gs_const(namer(f"{prod.name}.B_{label}"), bias.astype(dtype))
    prod.inputs[1] = w
    if len(prod.inputs) > 2:
        prod.inputs[2] = b
    else:
        prod.inputs.append(b)


def _fold_conv(graph: gs.Graph, prod: gs.Node, w: np.ndarray, tf: ChannelTransform, namer: Namer) -> gs.Node | str:
    if w.shape[0] != tf.scale.size:
        return f"Conv {prod.name} has {w.shape[0]} output channels, the BN {tf.scale.size}"
    scaled = w.astype(np.float64) * tf.scale.reshape((-1,) + (1,) * (w.ndim - 1))
    set_weights(prod, scaled, _bias(prod, w.shape[0]) * tf.scale + tf.shift, w.dtype, namer)
    return prod


def _fold_conv_transpose(graph: gs.Graph, prod: gs.Node, w: np.ndarray, tf: ChannelTransform, namer: Namer) -> gs.Node | str:
    groups = int(prod.attrs.get("group", 1))
    c_in, c_out_g = w.shape[0], w.shape[1]
    if c_out_g * groups != tf.scale.size:
        return f"ConvTranspose {prod.name} has {c_out_g * groups} output channels, the BN {tf.scale.size}"
    # Output channel o = g·(Cout/g) + j lives at W[g·Cin/g : (g+1)·Cin/g, j].
    grouped = w.astype(np.float64).reshape((groups, c_in // groups, c_out_g) + w.shape[2:])
    scaled = grouped * tf.scale.reshape((groups, 1, c_out_g) + (1,) * (w.ndim - 2))
    set_weights(prod, scaled.reshape(w.shape), _bias(prod, tf.scale.size) * tf.scale + tf.shift, w.dtype, namer)
    return prod


def _fold_gemm(graph: gs.Graph, prod: gs.Node, w: np.ndarray, tf: ChannelTransform, namer: Namer) -> gs.Node | str:
    trans_b = int(prod.attrs.get("transB", 0))
    n = w.shape[0] if trans_b else w.shape[1]
    if n != tf.scale.size:
        return f"Gemm {prod.name} has {n} outputs, the BN {tf.scale.size}"
    scaled = w.astype(np.float64) * (tf.scale[:, None] if trans_b else tf.scale[None, :])
    bias = float(prod.attrs.get("beta", 1.0)) * _bias(prod, n)
    set_weights(prod, scaled, bias * tf.scale + tf.shift, w.dtype, namer)
    prod.attrs["beta"] = 1.0
    return prod


def _fold_matmul(graph: gs.Graph, prod: gs.Node, w: np.ndarray, tf: ChannelTransform, namer: Namer) -> gs.Node | str:
    if w.ndim != 2 or rank_of(prod.inputs[0]) != 2 or w.shape[1] != tf.scale.size:
        return f"MatMul {prod.name} is not [M,K]×[K,C] with C = the BN's channels"
    prod.inputs[1] = gs_const(namer(f"{prod.name}.W_bn"), (w.astype(np.float64) * tf.scale).astype(w.dtype))
    shift = gs_const(namer(f"{prod.name}.bn_shift_value"), tf.shift.astype(w.dtype))
    add = gs.Node("Add", namer(f"{prod.name}.bn_shift"), inputs=[prod.outputs[0], shift],
                  outputs=[gs.Variable(namer(f"{prod.name}.shifted"), dtype=prod.outputs[0].dtype)])
    graph.nodes.append(add)
    return add


def _to_mul_add(graph: gs.Graph, bn: gs.Node, tf: ChannelTransform, namer: Namer) -> bool:
    rank = rank_of(bn.inputs[0])
    if rank is None:
        return False
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
    return True


PASSES: tuple[type[Pass], ...] = (FoldBatchNorm,)
