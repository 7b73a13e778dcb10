"""Matching helpers every pass family shares.

Everything here reads an onnx-graphsurgeon graph and never edits it. A matcher that gives up raises
:class:`NoMatch` with the reason a user will see in ``--verbose`` output; the pass turns it into a skip.
:func:`intermediates_private` is the one check that a match may be replaced: the tensors that die with
it are read only inside the match and are not graph outputs.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from onnxmend.core.graph import const_value, consumers, is_graph_output

# dtypes whose statistics must be computed in float32 (LayerNormalization stash_type=1).
LOW_PRECISION_ONNX = (onnx.TensorProto.FLOAT16, onnx.TensorProto.BFLOAT16)


class NoMatch(Exception):
    """A candidate is not the pattern; the message is the reason recorded as a skip."""


def require(condition: bool, reason: str) -> None:
    if not condition:
        raise NoMatch(reason)


def scalar(tensor: gs.Tensor | None) -> float | None:
    """A constant with exactly one element, as a Python float."""
    value = const_value(tensor)
    if value is None or value.size != 1:
        return None
    return float(value.reshape(()))


def close(value: float | None, expected: float, rtol: float = 1e-4) -> bool:
    return value is not None and abs(value - expected) <= rtol * abs(expected)


def private(graph: gs.Graph, tensor: gs.Tensor, allowed: Iterable[gs.Node]) -> bool:
    """True when only ``allowed`` nodes read ``tensor`` and it is not a graph output."""
    allowed_ids = {id(n) for n in allowed}
    return not is_graph_output(graph, tensor) and all(id(n) in allowed_ids for n in consumers(tensor))


def require_private(graph: gs.Graph, tensor: gs.Tensor, allowed: Iterable[gs.Node]) -> None:
    require(private(graph, tensor, allowed), f"intermediate {tensor.name} has other consumers")


def sole_consumer(graph: gs.Graph, tensor: gs.Tensor, *ops: str) -> gs.Node:
    """The single node reading ``tensor``, which must be one of ``ops``."""
    users = consumers(tensor)
    require(len(users) == 1 and not is_graph_output(graph, tensor), f"intermediate {tensor.name} has other consumers")
    require(not ops or users[0].op in ops, f"{tensor.name} feeds {users[0].op}, not {'/'.join(ops)}")
    return users[0]


def other_input(node: gs.Node, tensor: gs.Tensor) -> gs.Tensor:
    """For a binary op, the input that is not ``tensor``."""
    require(len(node.inputs) == 2, f"{node.op} {node.name} does not have two inputs")
    a, b = node.inputs
    if a is tensor:
        return b
    require(b is tensor, f"{node.name} does not read {tensor.name}")
    return a


def tensor_dtype(tensor: gs.Tensor) -> np.dtype | None:
    dtype = tensor.dtype
    if dtype is None:
        return None
    try:
        return np.dtype(dtype)
    except TypeError:
        return None


def is_low_precision(tensor: gs.Tensor) -> bool:
    dtype = tensor.dtype
    if dtype is None:
        return False
    return dtype == np.float16 or "bfloat16" in str(dtype)


def cast_to(node: gs.Node) -> int:
    return int(node.attrs.get("to", 0))


def gs_const(name: str, value: np.ndarray) -> gs.Constant:
    return gs.Constant(name, np.ascontiguousarray(value))


def graph_opset(graph: gs.Graph, wanted: int) -> int:
    """The opset a pass may target: the lower of the graph's and the context's."""
    return min(int(graph.opset or 0) or wanted, wanted)


def intermediates_private(graph: gs.Graph, nodes: Iterable[gs.Node], keep: Iterable[gs.Tensor] = ()) -> str | None:
    """Why the match made of ``nodes`` cannot be replaced, or None when it can.

    Every output of a matched node dies with the match, except the tensors in ``keep`` (the match's
    result, which the replacement writes): each must be read only by matched nodes and must not be a
    graph output. This is the shared form of onnxscript's ``_valid_to_replace``.
    """
    members = {id(n) for n in nodes}
    kept = {id(t) for t in keep}
    for node in nodes:
        for tensor in node.outputs:
            if id(tensor) in kept:
                continue
            if is_graph_output(graph, tensor):
                return f"intermediate {tensor.name} is a graph output"
            if any(id(user) not in members for user in consumers(tensor)):
                return f"intermediate {tensor.name} has other consumers"
    return None
