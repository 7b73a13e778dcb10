"""Proving a tensor is never negative, which decides whether zero padding can fold into a MaxPool."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.core.graph import const_value, is_omitted

# Ops whose output is >= 0 whatever their input (NaN aside, which poisons a max either way).
NON_NEGATIVE_OPS = frozenset({"Relu", "Sigmoid", "Softplus", "Abs", "Exp", "Softmax", "HardSigmoid"})
# Ops that keep every value of a non-negative input non-negative.
NON_NEGATIVE_PRESERVING = frozenset({"Transpose", "Reshape", "Identity", "Flatten", "Squeeze", "Unsqueeze", "MaxPool"})


def is_non_negative(tensor: gs.Tensor, depth: int = 6) -> bool:
    """True when ``tensor`` is provably >= 0 (produced by Relu, Clip(min >= 0), Sigmoid, ... or a Pad/reshape of such)."""
    const = const_value(tensor)
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
        value = const_value(node.inputs[1])
        return float(value.reshape(-1)[0]) if value is not None and value.size else None
    return None
