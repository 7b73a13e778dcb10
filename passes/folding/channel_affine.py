"""The numerics the folding passes share: a per-channel transform ``y = x·scale + shift``, a Conv's
constant weights, a Mul/Add constant read as a per-channel vector, and new weight/bias constants.

Values are computed in float64 and rounded once when the new constants are written; shared constants
are never mutated (a new ``W_<label>``/``B_<label>`` pair is created for each rewritten node).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.core.graph import const_value
from onnxmend.passes.infra.match import NoMatch, gs_const, require
from onnxmend.passes.infra.naming import Namer

LINKS = ("Mul", "Add")


@dataclass(frozen=True)
class ChannelTransform:
    """``y = x·scale + shift`` along axis 1 (float64, length C)."""

    scale: np.ndarray
    shift: np.ndarray


@dataclass(frozen=True)
class ConvWeights:
    """The constant weights and bias of one Conv/ConvTranspose, and a channel count and rank."""

    weights: np.ndarray
    bias: np.ndarray | None
    channels: int
    rank: int


def conv_weights(conv: gs.Node) -> ConvWeights:
    """A Conv/ConvTranspose's constant float weights (``channels`` = its output channels)."""
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


def scale_output_channels(conv: gs.Node, w: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``w`` (float64) with output channel ``o`` multiplied by ``scale[o]``, for Conv and ConvTranspose."""
    if conv.op == "Conv":
        return w * scale.reshape((-1,) + (1,) * (w.ndim - 1))
    # ConvTranspose: output channel o = g·(Cout/g) + j lives at W[g·Cin/g : (g+1)·Cin/g, j].
    groups = int(conv.attrs.get("group", 1))
    c_in, c_out_g = w.shape[0], w.shape[1]
    grouped = w.reshape((groups, c_in // groups, c_out_g) + w.shape[2:])
    return (grouped * scale.reshape((groups, 1, c_out_g) + (1,) * (w.ndim - 2))).reshape(w.shape)


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


def remove_links(links: tuple[gs.Node, ...]) -> None:
    """Disconnect folded Mul/Add nodes (the manager sweeps them)."""
    for link in links:
        link.inputs.clear()
        link.outputs.clear()
