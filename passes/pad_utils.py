"""Helpers shared by the padding passes: reading a Pad into full-rank form, Conv/pool attributes,
constants, and the non-negativity test that decides whether zero padding can fold into a MaxPool.

A Pad's ``pads`` can arrive as an initializer, a ``Constant`` node or a subgraph; subgraphs are evaluated
by :mod:`onnxmend.passes.pad_eval`.
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import onnx_graphsurgeon as gs

log = logging.getLogger(__name__)

CONV_OPS = ("Conv", "ConvTranspose")
POOL_OPS = ("MaxPool", "AveragePool", "LpPool")
# Ops whose output is >= 0 whatever their input (NaN aside, which poisons a max either way).
NON_NEGATIVE_OPS = frozenset({"Relu", "Sigmoid", "Softplus", "Abs", "Exp", "Softmax", "HardSigmoid"})
# Ops that keep every value of a non-negative input non-negative.
NON_NEGATIVE_PRESERVING = frozenset({"Transpose", "Reshape", "Identity", "Flatten", "Squeeze", "Unsqueeze", "MaxPool"})


def attr_ints(node: gs.Node, name: str, default: Sequence[int]) -> list[int]:
    value = node.attrs.get(name)
    return [int(v) for v in value] if value is not None else list(default)


def spatial_rank(node: gs.Node) -> int | None:
    """How many spatial axes a Conv/Pool node works on, from whatever attribute or shape says it."""
    kernel = node.attrs.get("kernel_shape")
    if kernel is not None:
        return len(kernel)
    for tensor in node.inputs[:2]:
        if tensor.shape is not None and len(tensor.shape) > 2:
            return len(tensor.shape) - 2
    return None


def kernel_size(node: gs.Node) -> list[int] | None:
    """``kernel_shape`` or, for Conv/ConvTranspose, the weight's spatial dims when they are static."""
    if "kernel_shape" in node.attrs:
        return [int(k) for k in node.attrs["kernel_shape"]]
    if node.op in CONV_OPS and len(node.inputs) > 1:
        shape = node.inputs[1].shape
        if shape is not None and len(shape) > 2 and all(isinstance(d, int) for d in shape[2:]):
            return [int(d) for d in shape[2:]]
    return None


def node_pads(node: gs.Node, rank: int) -> tuple[list[int], list[int]]:
    """Spatial (begins, ends) from a Conv/Pool ``pads`` attribute (all zero when absent)."""
    pads = attr_ints(node, "pads", [0] * (2 * rank))
    return pads[:rank], pads[rank:]


def auto_pad(node: gs.Node) -> str:
    value = node.attrs.get("auto_pad", "NOTSET")
    return value.decode() if isinstance(value, bytes) else str(value)


def constant_array(tensor: gs.Tensor) -> np.ndarray | None:
    """The value of an initializer or of a Constant node's output; None for anything computed."""
    if isinstance(tensor, gs.Constant):
        return np.asarray(tensor.values)
    if len(tensor.inputs) == 1 and tensor.inputs[0].op == "Constant":
        attrs = tensor.inputs[0].attrs
        if "value" in attrs:
            return np.asarray(attrs["value"].values)
        for key in ("value_int", "value_float"):
            if key in attrs:
                return np.asarray(attrs[key])
        for key in ("value_ints", "value_floats"):
            if key in attrs:
                return np.asarray(list(attrs[key]))
    return None


def is_omitted(tensor: gs.Tensor) -> bool:
    return isinstance(tensor, gs.Variable) and not tensor.name


def is_non_negative(tensor: gs.Tensor, depth: int = 6) -> bool:
    """True when ``tensor`` is provably >= 0 (produced by Relu, Clip(min >= 0), Sigmoid, ... or a Pad/reshape of such)."""
    const = constant_array(tensor)
    if const is not None:
        return bool(np.all(const >= 0))
    if depth == 0 or len(tensor.inputs) != 1:
        return False
    node = tensor.inputs[0]
    if node.op in NON_NEGATIVE_OPS:
        return True
    if node.op == "Clip":
        low = _clip_min(node)
        return low is not None and low >= 0
    if node.op in NON_NEGATIVE_PRESERVING:
        return is_non_negative(node.inputs[0], depth - 1)
    if node.op == "Pad":
        mode = node.attrs.get("mode", "constant")
        fill = node.inputs[2] if len(node.inputs) > 2 and not is_omitted(node.inputs[2]) else None
        fill_ok = fill is None or is_non_negative(fill, 0)
        return mode in ("constant", b"constant") and fill_ok and is_non_negative(node.inputs[0], depth - 1)
    if node.op == "Concat":
        return all(is_non_negative(t, depth - 1) for t in node.inputs)
    if node.op == "Max":  # max(a, b) >= 0 as soon as one operand is
        return any(is_non_negative(t, depth - 1) for t in node.inputs)
    return False


def _clip_min(node: gs.Node) -> float | None:
    if "min" in node.attrs:  # opset < 11
        return float(node.attrs["min"])
    if len(node.inputs) > 1 and not is_omitted(node.inputs[1]):
        value = constant_array(node.inputs[1])
        return float(value.reshape(-1)[0]) if value is not None and value.size else None
    return None
