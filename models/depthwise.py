"""Seeds 000/004: Keras ``DepthwiseConv2D`` vs torch ``Conv2d(groups=C)``.

Same operation, different names and kernel layouts: Keras keeps the depthwise kernel as
``[kh, kw, C, 1]`` (TFLite ``[1, kh, kw, C]``), torch as ``[C, 1, kh, kw]``. Both twins are a MobileNet
separable block built from one set of numpy weights: depthwise 3x3 (stride 1, "same", no bias), ReLU,
pointwise 1x1 conv 8→16 with bias. ``depthwise-torch-transposed`` is the port whose depthwise kernel was
transposed wrong (``kernel.transpose(2, 3, 1, 0)``: ``[C, 1, kw, kh]``, kh and kw swapped) — the same
shape, so it loads without complaint and computes a mirrored filter.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from onnxmend.core.deps import require
from onnxmend.models.weights import conv_kernel, depthwise_kernel, load_torch_conv, rng_for, uniform

SIZE = 16
CHANNELS = 8
OUT_CHANNELS = 16
KERNEL = 3


@dataclass(frozen=True)
class SeparableWeights:
    depthwise: np.ndarray  # [kh, kw, C, 1]
    pointwise: np.ndarray  # [1, 1, C, out]
    bias: np.ndarray


def separable_weights(seed: int) -> SeparableWeights:
    rng = rng_for("depthwise", seed)
    return SeparableWeights(
        depthwise_kernel(rng, KERNEL, KERNEL, CHANNELS),
        conv_kernel(rng, 1, 1, CHANNELS, OUT_CHANNELS),
        uniform(rng, OUT_CHANNELS, -0.2, 0.2),
    )


def build_keras(seed: int) -> Any:
    keras = require("keras")

    w = separable_weights(seed)
    x = keras.Input((SIZE, SIZE, CHANNELS), name="x")
    depthwise = keras.layers.DepthwiseConv2D(KERNEL, padding="same", use_bias=False, name="depthwise")
    pointwise = keras.layers.Conv2D(OUT_CHANNELS, 1, name="pointwise")
    y = pointwise(keras.layers.ReLU(name="relu")(depthwise(x)))
    depthwise.set_weights([w.depthwise])
    pointwise.set_weights([w.pointwise, w.bias])
    return keras.Model(x, y, name="depthwise")


def build_torch(seed: int) -> Any:
    return _torch_port(seed, transposed_wrong=False)


def build_torch_transposed(seed: int) -> Any:
    """The port that swapped kh and kw when it transposed the depthwise kernel."""
    return _torch_port(seed, transposed_wrong=True)


def _torch_port(seed: int, transposed_wrong: bool) -> Any:
    torch = require("torch")

    w = separable_weights(seed)
    depthwise = torch.nn.Conv2d(CHANNELS, CHANNELS, KERNEL, padding=KERNEL // 2, groups=CHANNELS, bias=False)
    pointwise = torch.nn.Conv2d(CHANNELS, OUT_CHANNELS, 1)
    if transposed_wrong:
        with torch.no_grad():
            depthwise.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.depthwise.transpose(2, 3, 1, 0))))
    else:
        load_torch_conv(depthwise, w.depthwise, depthwise=True)
    load_torch_conv(pointwise, w.pointwise, w.bias)
    return torch.nn.Sequential(depthwise, torch.nn.ReLU(), pointwise)
