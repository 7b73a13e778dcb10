"""Static reads of a tensor's shape, folded to constants: the shape-folding half of ``fold-constants``.

``Shape(x)`` (opset 15+: only dims ``start`` to ``end``), and ``Gather``/``Slice`` of it with constant
indices, are constants when the dims they read are static, even where other dims of ``x`` are dynamic::

    x[N, 3, 8, 8] ─Shape(start=1)─Gather(idx 0)─ c        →        c = 3 (constant)

graphsurgeon's own shape folding reads ``x``'s whole shape and ignores ``start``/``end`` (ONNX's
backend tests ``shape_start_1``, ``shape_end_1``, …, and every expanded attention and rotary-embedding
function body, which read dims as ``Shape(x, start=-1)``, fold to the wrong values there), so
``fold-constants`` folds shapes here and has graphsurgeon evaluate only what is constant after that.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.core.graph import const_value


def fold_shape_reads(graph: gs.Graph) -> int:
    """Turn every static read of a shape into a constant; returns how many tensors became constants."""
    folded = 0
    for node in list(graph.nodes):
        if node.op != "Shape" or not node.outputs or not isinstance(node.outputs[0], gs.Variable):
            continue
        dims = _shape_dims(node)
        if dims is None:
            continue
        out = node.outputs[0]
        if all(d is not None for d in dims):
            _to_constant(out, np.asarray(dims, np.int64))
            folded += 1
            continue
        for reader in list(out.outputs):
            picked = _read(reader, out, dims)
            if picked is not None and all(d is not None for d in picked.ravel()):
                _to_constant(reader.outputs[0], picked.astype(np.int64))
                folded += 1
    return folded


def _shape_dims(node: gs.Node) -> list[int | None] | None:
    """The dims ``node`` (a Shape) returns, None for each dynamic one; None when the rank is unknown."""
    shape = node.inputs[0].shape if node.inputs else None
    if shape is None:
        return None
    rank = len(shape)
    start, end = _clamp(int(node.attrs.get("start", 0)), rank), _clamp(int(node.attrs.get("end", rank)), rank)
    return [d if isinstance(d, (int, np.integer)) and d >= 0 else None for d in shape[start:end]]


def _clamp(index: int, rank: int) -> int:
    return min(max(index + rank if index < 0 else index, 0), rank)


def _read(reader: gs.Node, shape_of: gs.Tensor, dims: list[int | None]) -> np.ndarray | None:
    """What a Gather or Slice of the shape tensor reads, as an object array (None for a dynamic dim)."""
    if not reader.outputs or not reader.inputs or reader.inputs[0] is not shape_of:
        return None
    values = np.asarray(dims, dtype=object)
    if reader.op == "Gather" and len(reader.inputs) == 2 and int(reader.attrs.get("axis", 0)) in (0, -1):
        indices = const_value(reader.inputs[1])
        if indices is None or indices.dtype.kind not in "iu" or np.any((indices < -len(dims)) | (indices >= len(dims))):
            return None
        return np.array(values[indices.astype(np.int64)], dtype=object)
    if reader.op == "Slice":
        bounds = _slice_bounds(reader)
        if bounds is None:
            return None
        return values[list(_slice_indices(len(dims), *bounds))]
    return None


def _slice_bounds(node: gs.Node) -> tuple[int, int, int] | None:
    """(start, end, step) of a Slice on the 1-D shape tensor, when they are constants on axis 0."""
    if "starts" in node.attrs:  # Slice-1: attributes
        found = [node.attrs.get("starts"), node.attrs.get("ends"), node.attrs.get("axes", [0]), [1]]
    else:
        found = [const_value(t) if t.name else None for t in node.inputs[1:5]]
        found += [None] * (4 - len(found))
        found[2] = [0] if found[2] is None and (len(node.inputs) < 4 or not node.inputs[3].name) else found[2]
        found[3] = [1] if found[3] is None and (len(node.inputs) < 5 or not node.inputs[4].name) else found[3]
    if any(v is None or np.size(v) != 1 for v in found):
        return None
    starts, ends, axes, steps = (int(np.ravel(v)[0]) for v in found)
    if axes not in (0, -1) or steps == 0:
        return None
    return starts, ends, steps


def _slice_indices(n: int, start: int, end: int, step: int) -> range:
    """ONNX Slice's indices on an axis of size ``n`` (negative bounds count from the end, then clamp)."""
    start, end = start + n if start < 0 else start, end + n if end < 0 else end
    if step > 0:
        return range(min(max(start, 0), n), min(max(end, 0), n), step)
    return range(min(max(start, 0), n - 1), min(max(end, -1), n - 1), step)


def _to_constant(tensor: gs.Variable, value: np.ndarray) -> None:
    tensor.to_constant(value)
    tensor.inputs.clear()
