"""The zoo's table: every reference model, the seed case it reproduces, and its default inputs.

Twins share ``twin_of`` and build from one set of numpy weights; Keras and TFLite inputs are NHWC, torch,
Paddle and MindSpore NCHW. TFLite entries build a Keras model that the TFLite exporter converts to
``.tflite`` (``quantize="int8"``: full-integer, int8 I/O) in its worker; Paddle and MindSpore entries are
built only in their framework's worker.
"""

from __future__ import annotations

from onnxmend.core.specs import TensorSpec
from onnxmend.models.entry import ZooEntry, nchw, nhwc

BERT_VOCAB = 8000
BERT_SEQ = 128

ENTRIES: tuple[ZooEntry, ...] = (
    # --- padding (seeds 001, 004) ---
    ZooEntry(
        "tf-same-conv-keras", "keras",
        "Keras Conv2D stride 2 padding='same' (pads bottom/right).",
        "padding:build_keras", (nhwc((1, 32, 32, 3)),),
    ),
    ZooEntry(
        "tf-same-conv-torch", "torch",
        "faithful torch port of tf-same-conv-keras (F.pad right/bottom, padding=0).",
        "padding:build_torch", (nchw((1, 3, 32, 32)),),
        twin_of="tf-same-conv-keras",
    ),
    ZooEntry(
        "tf-same-conv-torch-naive", "torch",
        "naive torch port (padding=k//2), off by one pixel at stride 2.",
        "padding:build_torch_naive", (nchw((1, 3, 32, 32)),),
        twin_of="tf-same-conv-keras",
    ),
    ZooEntry(
        "tf-pad-dynamic-torch", "torch",
        "torch net emulating TF 'same' with pads computed from x.shape at run time.",
        "tf_pad:build_dynamic", (nchw((1, 3, 56, 56)),),
    ),
    ZooEntry(
        "tf-pad-static-torch", "torch",
        "tf-pad-dynamic-torch with its pads written as F.pad constants.",
        "tf_pad:build_static", (nchw((1, 3, 56, 56)),),
        twin_of="tf-pad-dynamic-torch",
    ),
    ZooEntry(
        "tf-same-conv-paddle", "paddle",
        "Paddle port of tf-same-conv-keras, Conv2D(padding='SAME') (TF's rule; auto_pad in ONNX).",
        "ports:build_paddle", (nchw((1, 3, 32, 32)),),
        twin_of="tf-same-conv-keras",
    ),
    ZooEntry(
        "tf-same-conv-mindspore", "mindspore",
        "MindSpore port of tf-same-conv-keras, Conv2d(pad_mode='same').",
        "ports:build_mindspore", (nchw((1, 3, 32, 32)),),
        twin_of="tf-same-conv-keras",
    ),
    ZooEntry(
        "tf-same-conv-mindspore-pads", "mindspore",
        "tf-same-conv-mindspore with explicit pad_mode='pad' pads (0,1,0,1)/(1,2,1,2), which mindspore.export misorders.",
        "ports:build_mindspore_pads", (nchw((1, 3, 32, 32)),),
        twin_of="tf-same-conv-keras",
    ),
    # --- layout (seeds 000, 004) ---
    ZooEntry(
        "depthwise-keras", "keras",
        "Keras DepthwiseConv2D, kernel (kh,kw,C,1), then a pointwise conv.",
        "depthwise:build_keras", (nhwc((1, 16, 16, 8)),),
    ),
    ZooEntry(
        "depthwise-torch", "torch",
        "torch Conv2d(groups=C) port of depthwise-keras, kernel (C,1,kh,kw).",
        "depthwise:build_torch", (nchw((1, 8, 16, 16)),),
        twin_of="depthwise-keras",
    ),
    ZooEntry(
        "depthwise-tflite", "tflite",
        "depthwise-keras as .tflite, its depthwise kernel stored (1,kh,kw,C).",
        "depthwise:build_keras", (nhwc((1, 16, 16, 8)),),
        twin_of="depthwise-keras",
    ),
    ZooEntry(
        "depthwise-int8-tflite", "tflite",
        "depthwise-tflite as a full-int8 .tflite (int8 I/O), validated in quantization steps.",
        "depthwise:build_keras", (nhwc((1, 16, 16, 8)),),
        twin_of="depthwise-keras", quantize="int8",
    ),
    ZooEntry(
        "depthwise-torch-transposed", "torch",
        "torch port of depthwise-keras whose depthwise kernel was transposed wrong (kh, kw swapped).",
        "depthwise:build_torch_transposed", (nchw((1, 8, 16, 16)),),
        twin_of="depthwise-keras",
    ),
    # --- batch norm (seed 002) ---
    ZooEntry(
        "bn-stack-keras", "keras",
        "24 x Conv+BatchNormalization(eps 1e-3)+ReLU in Keras.",
        "batchnorm:build_keras", (nhwc((1, 16, 16, 3)),),
    ),
    ZooEntry(
        "bn-stack-torch", "torch",
        "torch port of bn-stack-keras with BatchNorm2d's default eps 1e-5 (drifts).",
        "batchnorm:build_torch", (nchw((1, 3, 16, 16)),),
        twin_of="bn-stack-keras",
    ),
    ZooEntry(
        "bn-stack-torch-eps-fixed", "torch",
        "torch port of bn-stack-keras with eps=1e-3 carried over (matches).",
        "batchnorm:build_torch_eps_fixed", (nchw((1, 3, 16, 16)),),
        twin_of="bn-stack-keras",
    ),
    ZooEntry(
        "bn-dropout-torch", "torch",
        "Conv+BatchNorm2d(momentum=0.1)+ReLU+Dropout(p=0.2) in torch, the twin of bn-dropout-mindspore.",
        "dropout_bn:build_torch", (nchw((1, 3, 16, 16)),),
    ),
    ZooEntry(
        "bn-dropout-mindspore", "mindspore",
        "MindSpore port of bn-dropout-torch: BatchNorm2d(momentum=0.9) (1 - torch's) and Dropout(keep_prob=0.8).",
        "dropout_bn:build_mindspore", (nchw((1, 3, 16, 16)),),
        twin_of="bn-dropout-torch",
    ),
    # --- layer norm (seed 000) ---
    ZooEntry(
        "layernorm-hwc-keras", "keras",
        "tf.contrib layer_norm form, stats over (H,W,C), affine over C.",
        "layernorm:build_hwc_keras", (nhwc((1, 8, 8, 16)),),
    ),
    ZooEntry(
        "groupnorm1-torch", "torch",
        "GroupNorm(1, C), the exact torch port of layernorm-hwc-keras.",
        "layernorm:build_groupnorm1_torch", (nchw((1, 16, 8, 8)),),
        twin_of="layernorm-hwc-keras",
    ),
    ZooEntry(
        "layernorm-chw-torch", "torch",
        "nn.LayerNorm over (C,H,W) with its full (C,H,W) affine (cannot hold tf.contrib weights).",
        "layernorm:build_chw_torch", (nchw((1, 16, 8, 8)),),
    ),
    ZooEntry(
        "layernorm-last-keras", "keras",
        "keras LayerNormalization over the last axis (C) of NHWC.",
        "layernorm:build_last_keras", (nhwc((1, 8, 8, 16)),),
    ),
    ZooEntry(
        "layernorm-last-torch", "torch",
        "faithful torch port of layernorm-last-keras (nn.LayerNorm(C) between permutes).",
        "layernorm:build_last_torch", (nchw((1, 16, 8, 8)),),
        twin_of="layernorm-last-keras",
    ),
    ZooEntry(
        "layernorm-last-torch-wrong-axes", "torch",
        "torch port of layernorm-last-keras over the wrong axes (GroupNorm(1, C): over C, H, W).",
        "layernorm:build_last_torch_wrong_axes", (nchw((1, 16, 8, 8)),),
        twin_of="layernorm-last-keras",
    ),
    # --- pooling (seeds 000, 004) ---
    ZooEntry(
        "gap-keepdims-torch", "torch",
        "AdaptiveAvgPool2d(1), output keeps 4-D (N,C,1,1).",
        "pooling:build_torch_keepdims", (nchw((1, 3, 16, 16)),),
        twin_of="gap-keras",
    ),
    ZooEntry(
        "gap-keras", "keras",
        "GlobalAveragePooling2D(), output drops to (N,C).",
        "pooling:build_keras", (nhwc((1, 16, 16, 3)),),
    ),
    ZooEntry(
        "gap-keepdims-keras", "keras",
        "GlobalAveragePooling2D(keepdims=True), output (N,1,1,C).",
        "pooling:build_keras_keepdims", (nhwc((1, 16, 16, 3)),),
        twin_of="gap-keras",
    ),
    # --- dynamic axes that do not run at every size (the numeric gate must find sizes that run) ---
    ZooEntry(
        "detector-dynamic-onnx", "onnx",
        "Dynamic H/W that must be multiples of 32 (FPN-style Add after 5 stride-2 pools and a x32 Resize).",
        "dynamic:build_detector", (TensorSpec("x", ("N", 3, "H", "W"), "float32", "NCHW"),), outputs=("y",),
    ),
    ZooEntry(
        "audio-reflect-onnx", "onnx",
        "Dynamic length T with a reflect Pad of 32 samples (onnxruntime needs T > 32) and a strided Conv1d.",
        "dynamic:build_audio", (TensorSpec("x", ("N", 1, "T"), "float32", "NCL"),), outputs=("y",),
    ),
    # --- architectures ---
    ZooEntry(
        "vit-block-torch", "torch",
        "ViT block (patch conv, LayerNorm, MatMul/Softmax attention, GELU MLP).",
        "vit:build", (nchw((1, 3, 32, 32)),),
    ),
    ZooEntry(
        "resnet18-torch", "torch",
        "ResNet-18 (Conv+BN+ReLU, calibrated BN statistics) for fold/bench.",
        "cnn:build_resnet18", (nchw((1, 3, 224, 224)),),
    ),
    ZooEntry(
        "mobilenetv2-torch", "torch",
        "MobileNetV2 (depthwise groups=C, ReLU6, calibrated BN) for fold/bench.",
        "cnn:build_mobilenetv2", (nchw((1, 3, 224, 224)),),
    ),
    ZooEntry(
        "bert-encoder-torch", "torch",
        "BERT-style encoder (token ids, MatMul/Softmax attention, LayerNorm, GELU) for quantize.",
        "bert:build", (TensorSpec("input_ids", (1, BERT_SEQ), "int64", "other", (0, BERT_VOCAB)),),
        outputs=('last_hidden_state', 'pooled'),
    ),
)
