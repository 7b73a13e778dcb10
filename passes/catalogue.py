"""The pass catalogue and the presets: named, ordered lists of passes.

Order matters and is stated here, not in comments elsewhere: cleanup first so later matchers see
constants, padding before layout (a folded Pad no longer sits between Transposes), layout before norms
(a LayerNorm over the channel axis is only recognisable once the layout is settled), cleanup last.
"""

from __future__ import annotations

import importlib

from onnxmend.core.errors import OnnxmendError
from onnxmend.passes.base import Pass

# Modules that contribute a ``PASSES`` tuple, in catalogue order.
PASS_MODULES = (
    "cleanup", "pad_dynamic", "padding", "pad_fold", "pad_split", "tensordot", "layout", "io_layout",
    "batch_norm", "conv_affine", "conv_input_affine", "layer_norm", "group_norm", "respell_norms", "gelu", "decompose_norms",
)

_CLEANUP = ("remove-identity", "fold-constants", "dedupe-initializers")
# fold-dynamic-pad turns run-time pad chains into constants, resolve-auto-pad makes every pad explicit,
# then fold-pad can move Pads into their Conv/Pool, also across a layout Transpose.
_PADDING = ("fold-dynamic-pad", "resolve-auto-pad", "fold-pad")
_LAYOUT = ("collapse-tensordot", "io-layout", "push-transposes")

PRESETS: dict[str, tuple[str, ...]] = {
    "fix": (
        *_CLEANUP, *_PADDING, *_LAYOUT,
        # fold-conv-affine: tf2onnx spells BatchNorm as Mul/Add after Conv (ResNet50, EfficientNet) and
        # ConvNeXt's LayerScale is a Mul after a 1x1 Conv; onnxruntime folds these itself at ORT_ENABLE_ALL,
        # other runtimes and lower optimisation levels do not.
        # fuse-gelu: onnxruntime fuses only the Div(x, √2) GELU spelling; Keras' 1 − Erf(−x/√2) stays
        # decomposed unless fused here (below opset 20 as com.microsoft Gelu): ConvNeXtTiny 1.11–1.16× faster.
        # respell-layer-norm: the LayerNorms that must stay decomposed (opset < 17, or a pinned --layout
        # that forbids a channel norm's Transpose pair) in their shortest spelling; after fuse-group-norm,
        # so a GroupNorm's ReduceMean spelling is fused before it could be respelled.
        # fold-conv-input-affine: the γ/β of a norm that stays decomposed, into the Conv that reads it.
        "fold-batch-norm", "fold-conv-affine", "fuse-layer-norm", "fuse-group-norm", "respell-layer-norm",
        "fold-conv-input-affine", "fuse-gelu", "eliminate-dead-nodes",
    ),
    # For targets without LayerNormalization/GroupNormalization or asymmetric pads: nothing is fused
    # (fusing then decomposing would only ping-pong), norms are spelled out, pads made symmetric.
    "portable": (
        *_CLEANUP, *_PADDING, "split-asymmetric-pads", *_LAYOUT,
        "fold-batch-norm", "fold-conv-affine", "decompose-norms", "respell-layer-norm", "fold-conv-input-affine",
        "eliminate-dead-nodes",
    ),
    "none": (),
}


def all_passes() -> dict[str, type[Pass]]:
    """Every known pass class by its command-line name, in catalogue order."""
    found: dict[str, type[Pass]] = {}
    for module_name in PASS_MODULES:
        module = importlib.import_module(f"onnxmend.passes.{module_name}")
        for cls in module.PASSES:
            found[cls.name] = cls
    return found


def resolve(preset: str | None = None, names: str | list[str] | None = None) -> list[Pass]:
    """Pass instances for ``--passes a,b,c`` (any subset, in the order given) or a preset."""
    catalogue = all_passes()
    if names:
        wanted = [n.strip() for n in names.split(",")] if isinstance(names, str) else list(names)
        unknown = [n for n in wanted if n not in catalogue]
        if unknown:
            raise OnnxmendError(
                f"Unknown pass {', '.join(unknown)}; `onnxmend passes` lists the {len(catalogue)} known ones."
            )
        return [catalogue[n]() for n in wanted if n]
    preset = preset or "fix"
    if preset not in PRESETS:
        raise OnnxmendError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    return [catalogue[n]() for n in PRESETS[preset]]
