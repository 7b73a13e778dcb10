"""The push-transposes table: one handler per op type, saying how the op runs under a Transpose.

A handler gets the node, the perm ``p`` of the Transpose that feeds it (``y = transpose(x, p)``) and the
opset, and returns either a :class:`Rewrite` (which inputs are data in the transposed layout, the new
attributes and constant inputs, the perm to put back after each output) or a one-sentence reason why the
op cannot run on ``x``. The driver in ``passes/layout/push_transposes.py`` does the graph editing; handlers only decide::

    Relu(y)                      = transpose(Relu(x), p)
    Add(y, c)                    = transpose(Add(x, c'), p)          c' = permute_broadcast_operand(c, p)
    ReduceMean(y, A, keepdims=0) = transpose(ReduceMean(x, p[A]), perm_after_dropping(p, A))
    MatMul(y, W[C,K]), p[-1]=1   = transpose(Conv(x, W^T[K,C,1,1]), p)
    BatchNormalization(y)        = transpose(BatchNormalization(x), p)   only when p[1] == 1
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Union

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.core.graph import const_value
from onnxmend.passes.layout.perm import (
    Perm,
    keeps_trailing,
    map_axes,
    normalize_axis,
    perm_after_dropping,
    perm_after_inserting,
    permute_begin_end,
    permute_per_axis,
)

ALL = -1  # "every input" in Rewrite.data


@dataclass(frozen=True)
class Rewrite:
    """How a node runs on the un-transposed tensors."""

    data: tuple[int, ...]  # inputs in the transposed layout (ALL: every input)
    out_perms: tuple[Perm, ...]  # the perm that restores each output's layout
    broadcast: bool = False  # constant data inputs broadcast numpy-style (else they have full rank)
    attrs: dict[str, object] = field(default_factory=dict)
    aux: dict[int, np.ndarray] = field(default_factory=dict)  # replaced constant non-data inputs
    op: str | None = None  # new op type (MatMul becomes Conv)


Handler = Callable[[gs.Node, Perm, int], Union[Rewrite, str]]


def _present(node: gs.Node, index: int) -> bool:
    return len(node.inputs) > index and bool(node.inputs[index].name)


def _same(p: Perm, node: gs.Node) -> tuple[Perm, ...]:
    return tuple(p for _ in node.outputs)


def _unary(node: gs.Node, p: Perm, opset: int) -> Rewrite | str:
    # f(transpose(x)) == transpose(f(x)) for any elementwise f; extra inputs (Clip min/max) are scalars.
    return Rewrite(data=(0,), out_perms=_same(p, node))


def _elementwise(node: gs.Node, p: Perm, opset: int) -> Rewrite | str:
    return Rewrite(data=(ALL,), out_perms=_same(p, node), broadcast=True)


def _prelu(node: gs.Node, p: Perm, opset: int) -> Rewrite | str:
    # The slope broadcasts onto X only (unidirectionally), so the Transpose must be on X.
    producer = node.inputs[0].inputs[0] if node.inputs[0].inputs else None
    if producer is None or producer.op != "Transpose":
        return "PRelu's slope is transposed but its input X is not"
    return Rewrite(data=(0, 1), out_perms=_same(p, node), broadcast=True)


def _axes(node: gs.Node, index: int, attr: str = "axes") -> list[int] | None | str:
    """Axes from the input at ``index`` (newer opsets) or from the attribute; None when absent."""
    if _present(node, index):
        values = const_value(node.inputs[index])
        if values is None:
            return f"{node.op} has axes computed at runtime"
        return [int(a) for a in values.reshape(-1)]
    if attr in node.attrs:
        return [int(a) for a in node.attrs[attr]]
    return None


def _set_axes(node: gs.Node, index: int, axes: list[int], attr: str = "axes") -> tuple[dict, dict]:
    """(attrs, aux) that write ``axes`` back wherever the node keeps them."""
    if _present(node, index):
        return {}, {index: np.array(axes, dtype=np.int64)}
    return {attr: axes}, {}


def _reduce(node: gs.Node, p: Perm, opset: int) -> Rewrite | str:
    axes = _axes(node, 1)
    if isinstance(axes, str):
        return axes
    keepdims = int(node.attrs.get("keepdims", 1))
    if not axes:
        if int(node.attrs.get("noop_with_empty_axes", 0)):
            return Rewrite(data=(0,), out_perms=(p,))
        # Reducing every axis leaves unit axes (or a scalar): nothing to transpose back.
        identity = tuple(range(len(p))) if keepdims else ()
        return Rewrite(data=(0,), out_perms=(identity,))
    new_axes = sorted(map_axes(axes, p))
    attrs, aux = _set_axes(node, 1, new_axes)
    out = p if keepdims else perm_after_dropping(p, axes)
    return Rewrite(data=(0,), out_perms=(out,), attrs=attrs, aux=aux)


def _arg_reduce(node: gs.Node, p: Perm, opset: int) -> Rewrite | str:
    axis = normalize_axis(int(node.attrs.get("axis", 0)), len(p))
    keepdims = int(node.attrs.get("keepdims", 1))
    out = p if keepdims else perm_after_dropping(p, [axis])
    return Rewrite(data=(0,), out_perms=(out,), attrs={"axis": p[axis]})


def _squeeze(node: gs.Node, p: Perm, opset: int) -> Rewrite | str:
    axes = _axes(node, 1)
    if isinstance(axes, str):
        return axes
    if not axes:
        return "Squeeze without axes depends on runtime shapes"
    attrs, aux = _set_axes(node, 1, sorted(map_axes(axes, p)))
    return Rewrite(data=(0,), out_perms=(perm_after_dropping(p, axes),), attrs=attrs, aux=aux)


def _unsqueeze(node: gs.Node, p: Perm, opset: int) -> Rewrite | str:
    axes = _axes(node, 1)
    if isinstance(axes, str):
        return axes
    if not axes:
        return "Unsqueeze has no axes"
    # The new unit axes go to the same output positions on both sides; only the old axes move.
    return Rewrite(data=(0,), out_perms=(perm_after_inserting(p, axes),))


def _concat(node: gs.Node, p: Perm, opset: int) -> Rewrite | str:
    axis = normalize_axis(int(node.attrs["axis"]), len(p))
    return Rewrite(data=(ALL,), out_perms=(p,), attrs={"axis": p[axis]})


def _split(node: gs.Node, p: Perm, opset: int) -> Rewrite | str:
    axis = normalize_axis(int(node.attrs.get("axis", 0)), len(p))
    return Rewrite(data=(0,), out_perms=_same(p, node), attrs={"axis": p[axis]})


def _softmax(node: gs.Node, p: Perm, opset: int) -> Rewrite | str:
    axis = normalize_axis(int(node.attrs.get("axis", -1 if opset >= 13 else 1)), len(p))
    if opset >= 13:
        return Rewrite(data=(0,), out_perms=(p,), attrs={"axis": p[axis]})
    # Before opset 13 the op flattens to 2-D at `axis`, so the flattened block must not move.
    if not keeps_trailing(p, axis):
        return f"{node.op} before opset 13 coerces axes {axis}.. to one and the Transpose reorders them"
    return Rewrite(data=(0,), out_perms=(p,))


def _slice(node: gs.Node, p: Perm, opset: int) -> Rewrite | str:
    if not _present(node, 1):
        return "Slice before opset 10 keeps axes in attributes; not handled"
    axes = _axes(node, 3)
    if isinstance(axes, str):
        return axes
    if axes is None:
        starts = const_value(node.inputs[1])
        if starts is None:
            return "Slice without axes needs constant starts to know how many axes it slices"
        axes = list(range(starts.size))
    return Rewrite(data=(0,), out_perms=(p,), aux={3: np.array(map_axes(axes, p), dtype=np.int64)})


def _pad(node: gs.Node, p: Perm, opset: int) -> Rewrite | str:
    if not _present(node, 1):
        pads = node.attrs.get("pads")
        if pads is None:
            return "Pad has no pads"
        return Rewrite(data=(0,), out_perms=(p,), attrs={"pads": permute_begin_end(pads, p).tolist()})
    if _present(node, 3):
        axes = _axes(node, 3)
        if isinstance(axes, str):
            return axes
        return Rewrite(data=(0,), out_perms=(p,), aux={3: np.array(map_axes(axes, p), dtype=np.int64)})
    pads = const_value(node.inputs[1])
    if pads is None:
        return "Pad has pads computed at runtime"
    return Rewrite(data=(0,), out_perms=(p,), aux={1: permute_begin_end(pads.reshape(-1), p).astype(np.int64)})


def _resize(node: gs.Node, p: Perm, opset: int) -> Rewrite | str:
    if "axes" in node.attrs:
        return Rewrite(data=(0,), out_perms=(p,), attrs={"axes": map_axes(node.attrs["axes"], p)})
    aux: dict[int, np.ndarray] = {}
    for index, permute in ((1, permute_begin_end), (2, permute_per_axis), (3, permute_per_axis)):
        if not _present(node, index):
            continue
        values = const_value(node.inputs[index])
        if values is None:
            return "Resize has roi/scales/sizes computed at runtime"
        if values.size:
            aux[index] = permute(values.reshape(-1), p).astype(values.dtype)
    return Rewrite(data=(0,), out_perms=(p,), aux=aux)


def _batch_norm(node: gs.Node, p: Perm, opset: int) -> Rewrite | str:
    if p[1] != 1:
        return f"{node.op} normalizes axis 1 and the Transpose puts axis {p[1]} there"
    if len([o for o in node.outputs if o.name]) > 1:
        return f"{node.op} in training mode (running statistics outputs) is not moved"
    return Rewrite(data=(0,), out_perms=(p,))


def _channel_first(node: gs.Node, p: Perm, opset: int) -> Rewrite | str:
    """InstanceNormalization and global pools: batch and channel must stay axes 0 and 1."""
    if p[0] != 0 or p[1] != 1:
        return f"{node.op} needs batch and channel on axes 0 and 1 and the Transpose moves them"
    if node.op.startswith("Global"):
        # The spatial axes pool to 1, so only unit axes would move: nothing to transpose back.
        return Rewrite(data=(0,), out_perms=(tuple(range(len(p))),))
    return Rewrite(data=(0,), out_perms=(p,))


def _layer_norm(node: gs.Node, p: Perm, opset: int) -> Rewrite | str:
    axis = int(node.attrs.get("axis", -1))
    if not keeps_trailing(p, axis):
        return "LayerNormalization's normalized axes would not stay trailing and in order"
    return Rewrite(data=(0,), out_perms=_same(p, node))


def _quantize(node: gs.Node, p: Perm, opset: int) -> Rewrite | str:
    if int(node.attrs.get("block_size", 0)):
        return f"blocked {node.op} is not moved"
    scale = const_value(node.inputs[1])
    if scale is not None and scale.size <= 1:
        return Rewrite(data=(0,), out_perms=(p,))
    axis = normalize_axis(int(node.attrs.get("axis", 1)), len(p))
    return Rewrite(data=(0,), out_perms=(p,), attrs={"axis": p[axis]})


def _matmul(node: gs.Node, p: Perm, opset: int) -> Rewrite | str:
    weight = const_value(node.inputs[1])
    producer = node.inputs[0].inputs[0] if node.inputs[0].inputs else None
    if producer is None or producer.op != "Transpose":
        return "MatMul's transposed operand is its weight, not its input"
    if weight is None or weight.ndim != 2:
        return "MatMul's weight is not a constant matrix"
    rank = len(p)
    if p[-1] == rank - 1:
        # With a 2-D weight every axis but the last is a batch axis, so the Transpose commutes.
        return Rewrite(data=(0,), out_perms=(p,))
    if p[-1] == 1 and 3 <= rank <= 5 and weight.dtype.kind == "f":
        # Contracting x's channel axis 1 is a 1x1 convolution with kernel W^T[K, C, 1, ...].
        kernel = np.ascontiguousarray(weight.T).reshape(weight.shape[1], weight.shape[0], *([1] * (rank - 2)))
        return Rewrite(
            data=(0,), out_perms=(p,), op="Conv", aux={1: kernel}, attrs={"kernel_shape": [1] * (rank - 2)},
        )
    return f"MatMul contracts axis {p[-1]} of the un-transposed tensor, which is neither last nor channel"


def _gemm(node: gs.Node, p: Perm, opset: int) -> Rewrite | str:
    # transpose(A) into Gemm is transA; the output layout does not change.
    attrs, data = {}, []
    for index, attr in ((0, "transA"), (1, "transB")):
        producer = node.inputs[index].inputs[0] if node.inputs[index].inputs else None
        if producer is not None and producer.op == "Transpose":
            attrs[attr] = 1 - int(node.attrs.get(attr, 0))
            data.append(index)
    return Rewrite(data=tuple(data), out_perms=((0, 1),), attrs=attrs)


_UNARY = (
    "Relu LeakyRelu Elu Selu Celu Clip Sigmoid HardSigmoid Tanh Erf Erfc Gelu FastGelu HardSwish Softplus Softsign Sqrt "
    "Reciprocal Neg Abs Exp Log Cast CastLike Identity Floor Ceil Round Sign Sin Cos Not IsNaN IsInf Mish "
    "ThresholdedRelu Shrink"
).split()
_ELEMENTWISE = "Add Sub Mul Div Pow Max Min Mean Sum Mod Equal Greater Less GreaterOrEqual LessOrEqual And Or Xor Where".split()
_REDUCE = "ReduceMean ReduceSum ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceLogSum ReduceLogSumExp ReduceSumSquare".split()

HANDLERS: dict[str, Handler] = {
    **{op: _unary for op in _UNARY},
    **{op: _elementwise for op in _ELEMENTWISE},
    **{op: _reduce for op in _REDUCE},
    "PRelu": _prelu,
    "ArgMax": _arg_reduce, "ArgMin": _arg_reduce,
    "Squeeze": _squeeze, "Unsqueeze": _unsqueeze,
    "Concat": _concat, "Split": _split, "Slice": _slice, "Pad": _pad, "Resize": _resize,
    "Softmax": _softmax, "LogSoftmax": _softmax, "Hardmax": _softmax,
    "BatchNormalization": _batch_norm, "InstanceNormalization": _channel_first,
    "GlobalAveragePool": _channel_first, "GlobalMaxPool": _channel_first, "GlobalLpPool": _channel_first,
    "LayerNormalization": _layer_norm,
    "QuantizeLinear": _quantize, "DequantizeLinear": _quantize,
    "MatMul": _matmul, "Gemm": _gemm,
}

# Which inputs may carry the Transpose that starts a push (the rest are shapes, scales, weights).
DATA_INPUTS: dict[str, tuple[int, ...]] = {
    **{op: (0,) for op in HANDLERS},
    **{op: (ALL,) for op in _ELEMENTWISE + ["Concat", "PRelu"]},
    "Gemm": (0, 1),
}

# Ops whose result depends on which axis is which and that no handler moves a Transpose through.
LAYOUT_SENSITIVE = frozenset(
    "Conv ConvTranspose ConvInteger QLinearConv MaxPool AveragePool LpPool GlobalAveragePool GlobalMaxPool "
    "BatchNormalization InstanceNormalization LayerNormalization GroupNormalization LRN DepthToSpace "
    "SpaceToDepth MaxRoiPool RoiAlign".split()
)

