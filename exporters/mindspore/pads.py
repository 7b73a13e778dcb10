"""The pad-order bug of ``mindspore.export(..., file_format="ONNX")``, corrected on the raw export.

MindSpore's ``nn.Conv2d(pad_mode="pad", padding=(top, bottom, left, right))`` is written as the ONNX
attribute ``pads=[top, bottom, left, right]``, but ONNX reads ``pads`` as
``[x1_begin, x2_begin, x1_end, x2_end]`` = ``[top, left, bottom, right]``. Unless top = left and
bottom = right, the exported Conv pads the wrong sides, and whenever top + bottom ≠ left + right its
output even has the wrong shape (seed 004's padding trap)::

    before:  Conv(x, W)  pads=[1, 2, 0, 3]    # MindSpore padding=(1, 2, 0, 3): out 1x8x8x10
    after:   Conv(x, W)  pads=[1, 0, 2, 3]    # what ONNX means by it:       out 1x8x9x9

Rules: only Convs whose weight is the ``weight`` of an ``nn.Conv2d`` with ``pad_mode="pad"`` are
touched (matched by the weight's parameter name, which the export keeps as the initializer name), and
only when their pads are exactly the Cell's ``(top, bottom, left, right)``; pads already in ONNX order
(a MindSpore that fixed the bug) are left alone. ``pad_mode="same"`` is exported as ``auto_pad`` and is
not affected. The correction is proven by the validation against MindSpore that follows, not assumed.

Non-goals: ``Conv2dTranspose``, ``Conv3d`` and pooling pads (not seen wrong here; not handled).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import onnx

Padding = tuple[int, int, int, int]  # MindSpore's (top, bottom, left, right)


@dataclass(frozen=True)
class PadCorrection:
    node: str
    weight: str
    written: tuple[int, ...]  # what mindspore.export wrote
    corrected: tuple[int, ...]  # the same padding in ONNX's order


def onnx_order(padding: Padding) -> tuple[int, int, int, int]:
    top, bottom, left, right = padding
    return top, left, bottom, right


def correct_pads(model: onnx.ModelProto, explicit: Mapping[str, Padding]) -> list[PadCorrection]:
    """Rewrite in place the pads of every Conv whose weight is in ``explicit`` (weight name -> padding)."""
    corrections = []
    for node in model.graph.node:
        if node.op_type != "Conv" or len(node.input) < 2 or node.input[1] not in explicit:
            continue
        padding = tuple(explicit[node.input[1]])
        attr = next((a for a in node.attribute if a.name == "pads"), None)
        if attr is None or tuple(attr.ints) != padding or onnx_order(padding) == padding:  # type: ignore[arg-type]
            continue
        corrected = onnx_order(padding)  # type: ignore[arg-type]
        attr.ints[:] = list(corrected)
        corrections.append(PadCorrection(node.name, node.input[1], padding, corrected))
    return corrections


def output_shapes(model: onnx.ModelProto) -> dict[str, tuple[int | str, ...]]:
    """Each graph output's shape as ONNX shape inference derives it from the inputs (the shapes the
    export declared for its outputs are set aside first: they are MindSpore's, not the graph's)."""
    bare = onnx.ModelProto()
    bare.CopyFrom(model)
    del bare.graph.value_info[:]
    for out in bare.graph.output:
        out.type.tensor_type.ClearField("shape")
    inferred = onnx.shape_inference.infer_shapes(bare)
    return {o.name: tuple(d.dim_value or d.dim_param or "?" for d in o.type.tensor_type.shape.dim)
            for o in inferred.graph.output}
