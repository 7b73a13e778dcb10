"""Seed 001: Keras ``Conv2D(strides=2, padding="same")`` and its two torch ports.

TF "same" pads the odd row/column at the bottom/right. The faithful port pads explicitly with those
amounts (``F.pad(x, (left, right, top, bottom))``, here ``(0, 1, 0, 1)`` and ``(1, 2, 1, 2)``) and convolves
with ``padding=0``; the naive port writes ``padding=k//2`` (symmetric), which keeps the output shape and
silently shifts every window by one pixel — seed 001's mean abs diff of 0.21.

All three are built from one set of numpy weights: conv 3→8 k3 s2, ReLU, conv 8→16 k5 s2.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from onnxmend.core.deps import require
from onnxmend.models.weights import conv_kernel, load_torch_conv, rng_for, tf_same_pads, uniform

SIZE = 32  # input height and width
IN_CHANNELS = 3
# (out channels, kernel, stride) per conv; a ReLU sits between them.
LAYERS: tuple[tuple[int, int, int], ...] = ((8, 3, 2), (16, 5, 2))


@dataclass(frozen=True)
class ConvWeights:
    kernel: np.ndarray  # [kh, kw, in, out]
    bias: np.ndarray
    stride: int


def same_conv_weights(seed: int) -> list[ConvWeights]:
    rng = rng_for("tf-same-conv", seed)
    weights, cin = [], IN_CHANNELS
    for cout, k, s in LAYERS:
        weights.append(ConvWeights(conv_kernel(rng, k, k, cin, cout), uniform(rng, cout, -0.2, 0.2), s))
        cin = cout
    return weights


def build_keras(seed: int) -> Any:
    keras = require("keras")

    x = keras.Input((SIZE, SIZE, IN_CHANNELS), name="x")
    y = x
    for i, w in enumerate(same_conv_weights(seed)):
        conv = keras.layers.Conv2D(w.kernel.shape[-1], w.kernel.shape[0], strides=w.stride, padding="same",
                                   name=f"conv{i + 1}")
        y = conv(y)
        conv.set_weights([w.kernel, w.bias])
        if i + 1 < len(LAYERS):
            y = keras.layers.ReLU(name=f"relu{i + 1}")(y)
    return keras.Model(x, y, name="tf_same_conv")


def build_torch(seed: int) -> Any:
    """Faithful port: explicit TF-same pads computed from kernel, stride and input size, then padding=0."""
    return _torch_port(seed, faithful=True)


def build_torch_naive(seed: int) -> Any:
    """Naive port: ``padding=k//2`` on both sides (correct only for stride 1)."""
    return _torch_port(seed, faithful=False)


def _torch_port(seed: int, faithful: bool) -> Any:
    torch = require("torch")

    layers: list[torch.nn.Module] = []
    size = SIZE
    weights = same_conv_weights(seed)
    for i, w in enumerate(weights):
        k, cin, cout = w.kernel.shape[0], w.kernel.shape[2], w.kernel.shape[3]
        if faithful:
            before, after = tf_same_pads(size, k, w.stride)  # square input and kernel: same for H and W
            layers.append(torch.nn.ZeroPad2d((before, after, before, after)))  # (left, right, top, bottom)
            conv = torch.nn.Conv2d(cin, cout, k, stride=w.stride, padding=0)
        else:
            conv = torch.nn.Conv2d(cin, cout, k, stride=w.stride, padding=k // 2)
        load_torch_conv(conv, w.kernel, w.bias)
        layers.append(conv)
        if i + 1 < len(weights):
            layers.append(torch.nn.ReLU())
        size = -(-size // w.stride)
    return torch.nn.Sequential(*layers)
