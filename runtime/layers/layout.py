"""Each ONNX tensor's layout relative to the source, and arrays brought into one layout to compare.

``perm`` means ``onnx tensor = transpose(source tensor, perm)``. Graph inputs start from the recorded
interface (``io-layout``) composed with how a port's inputs were matched; a Transpose composes its
``perm``; any other node passes the perm of its first data input of the same rank; a rank change loses it.
:func:`to_frame` then transposes a captured array back into the source's layout, falling back to the
only layout changes frameworks make (NHWC↔NCHW, NLC↔NCL) when the perm is unknown and the shapes say so.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import onnx

from onnxmend.core.graph import infer_shapes
from onnxmend.core.interface import read_interface
from onnxmend.runtime.runners.matching import LAYOUT_PERMS

Perm = tuple[int, ...]


def tensor_info(model: onnx.ModelProto) -> dict[str, tuple[int, int]]:
    """(rank, bytes) of every tensor shape inference knows (bytes 0 when a dim is not static)."""
    inferred = infer_shapes(model)
    found = {}
    for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
        tt = vi.type.tensor_type
        if tt.HasField("shape"):
            dims = [d.dim_value if d.HasField("dim_value") else 0 for d in tt.shape.dim]
            itemsize = onnx.helper.tensor_dtype_to_np_dtype(tt.elem_type).itemsize if tt.elem_type else 4
            found[vi.name] = (len(dims), int(np.prod(dims, dtype=np.int64)) * itemsize if all(dims) else 0)
    for init in model.graph.initializer:
        found[init.name] = (len(init.dims), 0)
    return found


def input_perms(model: onnx.ModelProto, matched: Mapping[str, Perm | None] | None = None) -> dict[str, Perm]:
    """Each graph input's perm relative to the source: the recorded interface change composed after the
    port's match (``matched``: model input → perm from the source's input, None for none)."""
    interface = read_interface(model)
    perms: dict[str, Perm] = {}
    for vi in model.graph.input:
        rank = len(vi.type.tensor_type.shape.dim)
        first = (matched or {}).get(vi.name) or tuple(range(rank))
        change = interface.get(vi.name)
        if change and change["kind"] == "input" and len(change["perm"]) == rank:  # type: ignore[arg-type]
            # recorded: model = transpose(source-layout, perm); the match already is that source layout
            first = tuple(first[p] for p in change["perm"])  # type: ignore[union-attr]
        perms[vi.name] = tuple(first)
    return perms


def tensor_perms(model: onnx.ModelProto, start: Mapping[str, Perm],
                 info: Mapping[str, tuple[int, int]] | None = None) -> dict[str, Perm]:
    """Propagate ``start`` (graph input perms) through the graph in node order (``info``: from
    :func:`tensor_info`, computed when not given)."""
    rank = {k: v[0] for k, v in (info if info is not None else tensor_info(model)).items()}
    consts = {t.name for t in model.graph.initializer}
    perms: dict[str, Perm] = {k: tuple(v) for k, v in start.items()}
    for node in model.graph.node:
        if not node.output:
            continue
        if node.op_type == "Transpose" and node.input and node.input[0] in perms:
            order = next((list(a.ints) for a in node.attribute if a.name == "perm"), None)
            inner = perms[node.input[0]]
            order = order or list(reversed(range(len(inner))))
            if len(order) == len(inner):
                perms[node.output[0]] = tuple(inner[j] for j in order)
            continue
        out_rank = rank.get(node.output[0])
        for name in node.input:
            if name and name not in consts and name in perms and len(perms[name]) == out_rank:
                perms[node.output[0]] = perms[name]
                break
    return perms


def to_frame(value: np.ndarray, perm: Perm | None, frame_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``value`` (an ONNX tensor) in the source's layout: undo ``perm`` when it fits, else the layout
    change that turns it into ``frame_shape``; unchanged when nothing fits."""
    candidates: list[Perm] = []
    if perm is not None and len(perm) == value.ndim:
        candidates.append(tuple(perm))
    if frame_shape is not None and len(frame_shape) == value.ndim:
        candidates += [tuple(range(value.ndim)), *LAYOUT_PERMS.get(value.ndim, ())]
    for p in candidates:
        back = tuple(int(i) for i in np.argsort(p))
        if frame_shape is None or tuple(value.shape[i] for i in back) == tuple(frame_shape):
            return value if back == tuple(range(value.ndim)) else np.transpose(value, back)
    return value


def letters_for(perm: Perm | None, source_letters: str, rank: int, fallback: str) -> str:
    """The axis letters of an ONNX tensor: the source's, moved by ``perm``; else ``fallback`` (NCHW)."""
    if perm is not None and len(perm) == rank == len(source_letters):
        return "".join(source_letters[p] for p in perm)
    return fallback
