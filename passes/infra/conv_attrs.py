"""Reading Conv, ConvTranspose and pool attributes: spatial rank, kernel size, pads, ``auto_pad``."""

from __future__ import annotations

import onnx_graphsurgeon as gs

from onnxmend.core.graph import attr_ints, attr_str

CONV_OPS = ("Conv", "ConvTranspose")
POOL_OPS = ("MaxPool", "AveragePool", "LpPool")


def auto_pad(node: gs.Node) -> str:
    return attr_str(node, "auto_pad", "NOTSET")


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


def pads_nothing(node: gs.Node) -> bool:
    """True when a Conv/Pool reads no padding: explicit pads all zero and ``auto_pad`` NOTSET or VALID."""
    return auto_pad(node) in ("NOTSET", "VALID") and not any(attr_ints(node, "pads", []))
