"""Shape vectors read symbolically: what a ``Shape → Gather → Unsqueeze → Concat`` chain computes, one
term per element, without running it.

A term is an ``int`` (a static size), a ``str`` (a symbol naming a dynamic size: the ``dim_param`` shape
inference gave it, or ``"<tensor>#<axis>"`` for an unnamed one, so two ``Shape`` nodes reading the same
tensor agree) or ``None`` (a value computed from dynamic sizes, equal to nothing). Two equal symbols are
the same size: that is what a ``dim_param`` means in ONNX, and what onnxruntime and onnxsim assume.

:func:`shape_terms` follows Shape (with ``start``/``end``), Gather and Slice with constant indices,
Concat, Unsqueeze/Squeeze, Cast, Identity, 1-D Reshape and integer Add/Sub/Mul/Div, down to
constants of at most :data:`MAX_TERMS` elements, through 0-D and 1-D tensors only; anything else is not
a shape chain (``None``).
"""

from __future__ import annotations

from typing import Union

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.core.graph import const_value, producer

Term = Union[int, str, None]

MAX_TERMS = 64
MAX_DEPTH = 64
CHAIN_OPS = frozenset({"Shape", "Gather", "Slice", "Concat", "Unsqueeze", "Squeeze", "Cast", "Identity",
                       "Reshape", "Add", "Sub", "Mul", "Div"})
INT_DTYPES = (np.dtype(np.int64), np.dtype(np.int32))


def dims_of(tensor: gs.Tensor) -> list[Term] | None:
    """The dimensions of ``tensor`` as terms; ``None`` when its rank is unknown."""
    shape = tensor.shape
    if shape is None:
        return None
    terms: list[Term] = []
    for axis, dim in enumerate(shape):
        if isinstance(dim, (int, np.integer)) and dim >= 0:
            terms.append(int(dim))
        elif isinstance(dim, str) and dim:
            terms.append(dim)
        else:
            terms.append(f"{tensor.name}#{axis}")
    return terms


def is_int_vector(tensor: gs.Tensor) -> bool:
    """A 0-D or 1-D int32/int64 tensor (what a shape chain computes)."""
    try:
        dtype = np.dtype(tensor.dtype) if tensor.dtype is not None else None
    except TypeError:
        return False
    return dtype in INT_DTYPES and tensor.shape is not None and len(tensor.shape) <= 1


def shape_terms(tensor: gs.Tensor, depth: int = 0) -> list[Term] | None:
    """The elements of a 0-D/1-D integer ``tensor`` as terms, or ``None`` when it is no shape chain."""
    value = const_value(tensor)
    if value is not None:
        return [int(v) for v in value.reshape(-1)] if value.size <= MAX_TERMS and value.dtype.kind in "iu" else None
    node = producer(tensor)
    if node is None or node.op not in CHAIN_OPS or depth > MAX_DEPTH or not _vector_shaped(tensor):
        return None
    if node.op == "Shape":
        return _shape(node)
    parts = [shape_terms(t, depth + 1) if t.name else None for t in node.inputs]
    if node.op == "Concat":
        return None if any(p is None for p in parts) else [t for p in parts for t in p]  # type: ignore[union-attr]
    if not parts or parts[0] is None:
        return None
    if node.op in ("Unsqueeze", "Squeeze", "Cast", "Identity", "Reshape"):
        return parts[0]  # a 0-D/1-D vector keeps its elements (the graph is valid, so the ranks agree)
    if node.op == "Gather":
        return _gather(node, parts[0])
    if node.op == "Slice":
        return _slice(node, parts[0])
    return _arithmetic(node.op, parts[0], parts[1] if len(parts) > 1 else None)


def _vector_shaped(tensor: gs.Tensor) -> bool:
    """A link of a chain is 0-D or 1-D, so its elements are read in order (Concat joins them, Gather picks)."""
    return tensor.shape is not None and len(tensor.shape) <= 1


def _shape(node: gs.Node) -> list[Term] | None:
    dims = dims_of(node.inputs[0])
    if dims is None:
        return None
    rank = len(dims)
    start, end = int(node.attrs.get("start", 0)), node.attrs.get("end")
    return dims[slice(start if start >= 0 else start + rank, None if end is None else int(end))]


def _gather(node: gs.Node, data: list[Term]) -> list[Term] | None:
    indices = const_value(node.inputs[1])
    if indices is None or int(node.attrs.get("axis", 0)) != 0:
        return None
    try:
        return [data[int(i)] for i in indices.reshape(-1)]
    except IndexError:
        return None


def _slice(node: gs.Node, data: list[Term]) -> list[Term] | None:
    """ONNX Slice on a 1-D vector: the same clamping as Python's slicing."""
    args = [const_value(t) if t.name else None for t in node.inputs[1:]]
    if len(args) < 2 or args[0] is None or args[1] is None:
        return None
    axes = args[2] if len(args) > 2 and args[2] is not None else np.zeros(1, np.int64)
    steps = args[3] if len(args) > 3 and args[3] is not None else np.ones(1, np.int64)
    if args[0].size != 1 or axes.reshape(-1)[0] not in (0, -1) or int(steps.reshape(-1)[0]) == 0:
        return None
    return data[slice(int(args[0].reshape(-1)[0]), int(args[1].reshape(-1)[0]), int(steps.reshape(-1)[0]))]


def _arithmetic(op: str, a: list[Term], b: list[Term] | None) -> list[Term] | None:
    """Integer Add/Sub/Mul/Div, broadcasting a one-element side; a dynamic operand gives ``None``."""
    if b is None or (len(a) != len(b) and 1 not in (len(a), len(b))):
        return None
    size = max(len(a), len(b))
    a, b = (a * size if len(a) == 1 else a), (b * size if len(b) == 1 else b)
    out: list[Term] = []
    for x, y in zip(a, b):
        if isinstance(x, int) and isinstance(y, int):
            out.append(_compute(op, x, y))
        elif (op in ("Add", "Sub") and y == 0) or (op in ("Mul", "Div") and y == 1):
            out.append(x)
        elif (op == "Add" and x == 0) or (op == "Mul" and x == 1):
            out.append(y)
        else:
            out.append(None)
    return out


def _compute(op: str, x: int, y: int) -> Term:
    if op == "Add":
        return x + y
    if op == "Sub":
        return x - y
    if op == "Mul":
        return x * y
    return int(np.trunc(x / y)) if y else None  # ONNX integer Div truncates toward zero
