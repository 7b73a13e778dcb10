"""Seed 000/004: global average pooling, which keeps dims in torch and drops them in Keras.

``nn.AdaptiveAvgPool2d(1)`` returns ``[N, C, 1, 1]``; ``keras.layers.GlobalAveragePooling2D()`` returns
``[N, C]`` unless ``keepdims=True`` (``[N, 1, 1, C]``). The twins share one set of numpy weights:
conv 3x3 3→16 (stride 1, "same"), ReLU, global average pool.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from onnxmend.core.deps import require
from onnxmend.models.weights import conv_kernel, load_torch_conv, rng_for, uniform

SIZE = 16
IN_CHANNELS = 3
CHANNELS = 16


@dataclass(frozen=True)
class GapWeights:
    kernel: np.ndarray  # [3, 3, in, out]
    bias: np.ndarray


def gap_weights(seed: int) -> GapWeights:
    rng = rng_for("gap", seed)
    return GapWeights(conv_kernel(rng, 3, 3, IN_CHANNELS, CHANNELS), uniform(rng, CHANNELS, -0.5, 0.5))


def build_keras(seed: int) -> Any:
    return _keras_model(seed, keepdims=False)


def build_keras_keepdims(seed: int) -> Any:
    return _keras_model(seed, keepdims=True)


def _keras_model(seed: int, keepdims: bool) -> Any:
    keras = require("keras")

    w = gap_weights(seed)
    x = keras.Input((SIZE, SIZE, IN_CHANNELS), name="x")
    conv = keras.layers.Conv2D(CHANNELS, 3, padding="same", activation="relu", name="conv")
    y = keras.layers.GlobalAveragePooling2D(keepdims=keepdims, name="gap")(conv(x))
    conv.set_weights([w.kernel, w.bias])
    return keras.Model(x, y, name="gap_keepdims" if keepdims else "gap")


def build_torch_keepdims(seed: int) -> Any:
    torch = require("torch")

    w = gap_weights(seed)
    conv = torch.nn.Conv2d(IN_CHANNELS, CHANNELS, 3, padding=1)
    load_torch_conv(conv, w.kernel, w.bias)
    return torch.nn.Sequential(conv, torch.nn.ReLU(), torch.nn.AdaptiveAvgPool2d(1))
