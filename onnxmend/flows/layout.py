"""``--layout auto|nchw|keep``: which interface the fixed graph gets and how many Transposes passes may add."""

from __future__ import annotations

from typing import Literal

from onnxmend.core.errors import OnnxmendError

LayoutChoice = Literal["auto", "nchw", "keep"]
IoLayout = Literal["nchw", "keep"]

LAYOUT_MEANING = {
    "auto": "Transposes allowed where a fused norm needs them",
    "nchw": "no Transpose added inside the graph",
    "keep": "no Transpose added inside the graph",
}


def choose_layout(choice: LayoutChoice, source_is_nhwc: bool, keep_interface: bool = False) -> IoLayout:
    """``auto`` means NCHW I/O for NHWC sources (the graph then has no boundary Transposes), else keep.

    ``--keep-interface`` keeps the source's I/O layout (``auto`` still lets fusions add Transposes inside);
    with ``--layout nchw`` it is a contradiction, refused in one sentence.
    """
    if keep_interface:
        if choice == "nchw":
            raise OnnxmendError(
                "--keep-interface keeps the source's layout, so it cannot go with --layout nchw; drop one of them."
            )
        return "keep"
    if choice == "auto":
        return "nchw" if source_is_nhwc else "keep"
    return choice


def layout_context(choice: LayoutChoice, io_layout: IoLayout, keep_interface: bool = False) -> dict[str, object]:
    """PassContext fields for a layout choice.

    ``auto`` lets a fusion add Transposes where the fused op is worth them (a channel LayerNorm of an NCHW
    graph becomes Transpose → LayerNormalization → Transpose; onnxruntime folds that pair into its NCHWc
    reorders). A pinned ``nchw`` or ``keep`` promises the Transpose count: none inside the graph, at most
    one at each NHWC input/output; such norms then stay decomposed.
    """
    return {"layout": io_layout, "fusions_may_transpose": choice == "auto", "keep_interface": keep_interface}
