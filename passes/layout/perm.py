"""Permutation algebra for the layout passes (tuples and numpy arrays), and the few graph helpers they share.

Convention everywhere: ``y = transpose(x, perm)`` means ``y.shape[i] == x.shape[perm[i]]``, i.e. axis ``i``
of ``y`` *is* axis ``perm[i]`` of ``x``. Pushing ``Transpose(perm)`` down through an op that works on ``y``
means running the op on ``x`` with its axes mapped through ``perm`` and transposing its result afterwards.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import onnx_graphsurgeon as gs

Perm = tuple[int, ...]

NCHW_TO_NHWC: Perm = (0, 2, 3, 1)
NHWC_TO_NCHW: Perm = (0, 3, 1, 2)


def inverse(perm: Sequence[int]) -> Perm:
    """``transpose(transpose(x, perm), inverse(perm)) == x``."""
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


def compose(first: Sequence[int], second: Sequence[int]) -> Perm:
    """The single perm of ``transpose(transpose(x, first), second)``."""
    return tuple(first[s] for s in second)


def is_identity(perm: Sequence[int]) -> bool:
    return tuple(perm) == tuple(range(len(perm)))


def normalize_axis(axis: int, rank: int) -> int:
    return axis + rank if axis < 0 else axis


def map_axes(axes: Sequence[int], perm: Sequence[int]) -> list[int]:
    """Axes of ``y = transpose(x, perm)`` named as the axes of ``x`` they are."""
    rank = len(perm)
    return [perm[normalize_axis(int(a), rank)] for a in axes]


def perm_after_dropping(perm: Sequence[int], dropped: Sequence[int]) -> Perm:
    """Perm that maps ``op(x, perm[dropped])`` onto ``op(y, dropped)`` when ``op`` removes those axes.

    Used for ``keepdims=0`` reductions and Squeeze: the surviving axes keep their relative order on both
    sides, so the perm between the results is the rank of each survivor among the survivors of ``x``.
    """
    rank = len(perm)
    dropped_y = {normalize_axis(int(a), rank) for a in dropped}
    kept_y = [i for i in range(rank) if i not in dropped_y]
    kept_x = sorted(perm[i] for i in kept_y)
    return tuple(kept_x.index(perm[i]) for i in kept_y)


def perm_after_inserting(perm: Sequence[int], inserted: Sequence[int]) -> Perm:
    """Perm that maps ``Unsqueeze(x, axes)`` onto ``Unsqueeze(y, axes)`` (the same output positions)."""
    out_rank = len(perm) + len(inserted)
    new_axes = {normalize_axis(int(a), out_rank) for a in inserted}
    old_positions = [j for j in range(out_rank) if j not in new_axes]
    result = []
    for j in range(out_rank):
        if j in new_axes:
            result.append(j)
        else:
            result.append(old_positions[perm[old_positions.index(j)]])
    return tuple(result)


def permute_per_axis(values: Sequence[int] | np.ndarray, perm: Sequence[int]) -> np.ndarray:
    """A per-axis vector of ``y`` (Resize scales/sizes) rewritten per axis of ``x``."""
    values = np.asarray(values)
    out = values.copy()
    for i, p in enumerate(perm):
        out[p] = values[i]
    return out


def permute_begin_end(values: Sequence[int] | np.ndarray, perm: Sequence[int]) -> np.ndarray:
    """A ``[begin_0..begin_r-1, end_0..end_r-1]`` vector (Pad pads, Resize roi) rewritten for ``x``."""
    values = np.asarray(values)
    rank = len(perm)
    return np.concatenate([permute_per_axis(values[:rank], perm), permute_per_axis(values[rank:], perm)])


def permute_broadcast_operand(values: np.ndarray, perm: Sequence[int]) -> np.ndarray | None:
    """The constant ``c'`` with ``op(x, c') == transpose^-1(op(transpose(x, perm), c))`` under numpy
    broadcasting, or ``None`` when ``c`` has more axes than the transposed operand.

    ``c`` is aligned to the trailing axes, so it is first unsqueezed to full rank, then permuted with the
    inverse perm; leading unit axes are dropped again to keep the constant as small as it was.
    """
    rank = len(perm)
    if values.ndim > rank:
        return None
    if values.size == 1 and values.ndim <= rank:
        return values
    full = values.reshape((1,) * (rank - values.ndim) + values.shape)
    moved = np.transpose(full, inverse(perm))
    lead = 0
    while lead < moved.ndim - values.ndim and moved.shape[lead] == 1:
        lead += 1
    return np.ascontiguousarray(moved.reshape(moved.shape[lead:]))


def keeps_trailing(perm: Sequence[int], start: int) -> bool:
    """True when the axes ``start..rank-1`` of ``y`` are the same axes of ``x``, in the same order."""
    rank = len(perm)
    return all(perm[i] == i for i in range(normalize_axis(start, rank), rank))


def is_reshape_like(perm: Sequence[int], shape: Sequence[int | None]) -> bool:
    """True when transposing a tensor of ``shape`` by ``perm`` only moves unit axes (a Reshape does it)."""
    if any(not isinstance(d, int) for d in shape):
        return False
    moved = [p for p in perm if shape[p] != 1]
    return moved == sorted(moved)


# Graph helpers shared by push-transposes and io-layout.


def perm_of(node: gs.Node) -> Perm:
    perm = node.attrs.get("perm")
    if perm is None:
        shape = node.inputs[0].shape if node.inputs else None
        return tuple(reversed(range(len(shape) if shape is not None else 0)))
    return tuple(map(int, perm))


def transpose_count(graph: gs.Graph) -> int:
    return sum(1 for n in graph.nodes if n.op == "Transpose")
