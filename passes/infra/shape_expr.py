"""Reading a shape computed at run time as an expression of the graph's dims, for matchers that must tell
what a ``Reshape`` target is when a dim is dynamic.

tf2onnx spells shapes that depend on a dynamic batch as ``Shape(x) ─Gather─ReduceProd─Unsqueeze─Concat─
Cast`` chains. :func:`shape_expression` evaluates such a chain without running it: every element is a
:data:`Dim`, a product ``(coefficient, names)`` of the tensor dims' own names (``("unk__9",)`` for a
dynamic batch, ``()`` for a number), so two targets that compute the same shape compare equal. Dims with
no name (unknown) and ops outside the small table give ``None``: the caller then declines with a reason.
Shape inference gives a dynamic dim the same name along the paths it can follow (Transpose, elementwise
ops); two dims of one name are equal by ONNX's rules, so the comparison is sound.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.core.graph import const_value

Dim = tuple[int, tuple[str, ...]]  # coefficient × product of named dims
_DEPTH = 16


def dims_of(shape: Sequence[int | str | None] | None) -> list[Dim] | None:
    """A tensor's shape as dims; None when some dim is neither a number nor named."""
    if shape is None:
        return None
    out: list[Dim] = []
    for d in shape:
        if isinstance(d, int) and d >= 0:
            out.append((d, ()))
        elif isinstance(d, str) and d:
            out.append((1, (d,)))
        else:
            return None
    return out


def product(dims: Sequence[Dim]) -> Dim:
    coef, names = 1, []
    for c, n in dims:
        coef *= c
        names += n
    return coef, tuple(sorted(names))


def shape_expression(tensor: gs.Tensor, depth: int = _DEPTH) -> list[Dim] | None:
    """The 1-D integer ``tensor`` as dims, or None when it is not a shape computation this reads."""
    value = const_value(tensor)
    if value is not None:
        return [(int(v), ()) for v in np.asarray(value).reshape(-1)] if value.ndim <= 1 else None
    node = tensor.inputs[0] if tensor.inputs else None
    if node is None or depth == 0:
        return None
    args = [shape_expression(t, depth - 1) if t.name else None for t in node.inputs[1:]]
    if node.op == "Shape":
        dims = dims_of(node.inputs[0].shape)
        start, end = int(node.attrs.get("start", 0)), node.attrs.get("end")
        return None if dims is None else dims[start:None if end is None else int(end)]
    first = shape_expression(node.inputs[0], depth - 1)
    if first is None:
        return None
    return _apply(node, first, args)


def reshape_target(reshape: gs.Node, source: list[Dim] | None = None) -> list[Dim] | None:
    """The shape ``reshape`` produces, as dims: its target read by :func:`shape_expression`, with a ``0``
    (copy the input's dim, unless ``allowzero``) and one ``-1`` (inferred) resolved against the input's dims
    (``source``, or its inferred shape). A literal target such as ``[-1, 8, 8, 16]`` (what fold-shape-chains
    makes of a dynamic batch's chain) so reads as the same dims as the chain did. None when unreadable."""
    target = shape_expression(reshape.inputs[1])
    if target is None:
        return None
    source = source if source is not None else dims_of(reshape.inputs[0].shape)
    out: list[Dim] = []
    for i, d in enumerate(target):
        if d == (0, ()) and not int(reshape.attrs.get("allowzero", 0)):
            if source is None or i >= len(source):
                return None
            d = source[i]
        out.append(d)
    holes = [i for i, d in enumerate(out) if d == (-1, ())]
    if not holes:
        return out
    if len(holes) > 1 or source is None:
        return None
    inferred = _divide(product(source), product([d for i, d in enumerate(out) if i != holes[0]]))
    if inferred is None:
        return None
    out[holes[0]] = inferred
    return out


def _divide(total: Dim, part: Dim) -> Dim | None:
    """``total / part`` as a dim, when the coefficient divides and ``part``'s names are among ``total``'s."""
    (tc, tn), (pc, pn) = total, part
    if pc <= 0 or tc % pc:
        return None
    names = list(tn)
    for name in pn:
        if name not in names:
            return None
        names.remove(name)
    return tc // pc, tuple(sorted(names))


def _apply(node: gs.Node, first: list[Dim], args: list[list[Dim] | None]) -> list[Dim] | None:
    if node.op in ("Cast", "Identity", "Unsqueeze", "Squeeze"):
        out = node.outputs[0].shape
        # A scalar and its 1-element vector read alike; anything that becomes 2-D is no shape.
        return first if out is None or len(out) <= 1 else None
    if node.op == "Gather" and args and args[0] is not None and int(node.attrs.get("axis", 0)) == 0:
        indices = [c for c, names in args[0] if not names]
        if len(indices) != len(args[0]) or any(not -len(first) <= i < len(first) for i in indices):
            return None
        return [first[i] for i in indices]
    if node.op == "ReduceProd" and _reduces_all(node, args):
        return [product(first)]
    if node.op == "Concat" and int(node.attrs.get("axis", 0)) in (0, -1):
        parts = [first] + [shape_expression(t) for t in node.inputs[1:]]
        return None if any(p is None for p in parts) else [d for p in parts for d in p]  # type: ignore[union-attr]
    return None


def _reduces_all(node: gs.Node, args: list[list[Dim] | None]) -> bool:
    """ReduceProd over the only axis of a 1-D shape (axes [0] as attribute or input, or none given)."""
    axes = node.attrs.get("axes")
    if axes is None and args:
        axes = None if args[0] is None else [c for c, _ in args[0]]
    return axes is None or list(axes) in ([0], [-1])
