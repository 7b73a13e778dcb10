"""The presets: named, ordered lists of passes. Order matters and is stated here, not in comments elsewhere.

Cleanup first so later matchers see constants, padding before layout (a folded Pad no longer sits between
Transposes), layout before norms (a LayerNorm over the channel axis is only recognisable once the layout is
settled), cleanup last. The order is tested (tests/passes/infra/test_presets.py).
"""

from __future__ import annotations

# fold-constants first (graphsurgeon folds what is wholly static, also inside If/Loop bodies);
# dedupe-initializers before eliminate-common-subexpressions, which compares inputs by identity, so nodes
# reading equal constants merge; CSE before fold-shape-chains, so a Shape chain recomputed per `view` is
# read once; fold-shape-chains turns what is left of each chain into a constant target (static dims,
# 0 = copy, -1 = infer) before collapse-reshapes merges Squeeze/Unsqueeze/Reshape links, whose targets
# must be constant to merge; remove-neutral-elementwise last (x+0 and x*1 left by a Keras Normalization
# or a zero bias). Later rounds of the fixed point repeat them after the other families have rewritten.
_CLEANUP = (
    "remove-identity", "fold-constants", "dedupe-initializers", "eliminate-common-subexpressions",
    "fold-shape-chains", "collapse-reshapes", "remove-neutral-elementwise",
)
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
        # It runs before fold-conv-affine and fold-conv-input-affine: a GELU's trailing Mul(0.5) in front of
        # a Conv is a scalar Mul they would move into the Conv's weights, leaving a GELU without its 0.5
        # (fuse-gelu still matches that scaled form, as Gelu then Mul, which they fold again).
        # respell-layer-norm: the LayerNorms that must stay decomposed (opset < 17, or a pinned --layout
        # that forbids a channel norm's Transpose pair) in their shortest spelling; after fuse-group-norm,
        # so a GroupNorm's ReduceMean spelling is fused before it could be respelled.
        # fold-conv-input-affine: the γ/β of a norm that stays decomposed, into the Conv that reads it.
        "fold-batch-norm", "fuse-gelu", "fold-conv-affine", "fuse-layer-norm", "fuse-group-norm",
        "respell-layer-norm", "fold-conv-input-affine", "eliminate-dead-nodes",
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

# What `quantize` runs, gated, on the graph it quantizes (not a preset: the fixed graph stays as it is).
# Dynamic int8 makes a Conv a ConvInteger (slower than fp32 on CPU) but a MatMul a DynamicQuantizeMatMul,
# so the 1x1 Convs the fix preset made of Dense layers go back to MatMuls, and push-transposes cancels
# the Transposes between neighbouring pointwise layers (see passes/layout/pointwise_conv_to_matmul.py).
PREPARE_FOR_INT8: tuple[str, ...] = ("pointwise-conv-to-matmul", "push-transposes", "eliminate-dead-nodes")
