"""Seed 000: the LayerNorm family that frameworks disagree on.

- ``layernorm-hwc-keras``: the ``tf.contrib.layers.layer_norm`` form on NHWC — statistics over (H, W, C),
  gamma/beta of shape (C,), epsilon 1e-12.
- ``groupnorm1-torch``: its faithful torch port, ``GroupNorm(1, C)`` — statistics over (C, H, W), affine
  per C — built from the same numpy weights (eps carried over).
- ``layernorm-chw-torch``: ``nn.LayerNorm([C, H, W])``, the port seed 000 warns about: same statistics,
  but a full (C, H, W) affine, so it cannot hold the tf.contrib weights.
- ``layernorm-last-keras``: ``keras.layers.LayerNormalization()`` — the last axis (C) only.
- ``layernorm-last-torch``: its faithful port — ``nn.LayerNorm(C)`` between two permutes (channels last).
- ``layernorm-last-torch-wrong-axes``: the port that normalizes over the wrong axes — ``GroupNorm(1, C)``
  takes its statistics over (C, H, W), where the Keras layer takes them over C per pixel.

Every model is a 1x1 conv 16→16 followed by the norm; gamma/beta are random, never identity.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from onnxmend.core.deps import require
from onnxmend.models.weights import conv_kernel, load_torch_conv, rng_for, uniform

SIZE = 8
CHANNELS = 16
CONTRIB_EPS = 1e-12  # tf.contrib.layers.layer_norm's variance_epsilon
KERAS_LN_EPS = 1e-3  # keras.layers.LayerNormalization's default
TORCH_LN_EPS = 1e-5


@dataclass(frozen=True)
class NormWeights:
    kernel: np.ndarray  # 1x1 conv [1, 1, C, C]
    bias: np.ndarray
    gamma: np.ndarray
    beta: np.ndarray


def norm_weights(seed: int, affine_shape: tuple[int, ...] = (CHANNELS,)) -> NormWeights:
    rng = rng_for("layernorm", seed)
    kernel = conv_kernel(rng, 1, 1, CHANNELS, CHANNELS)
    bias = uniform(rng, CHANNELS, -0.5, 0.5)
    return NormWeights(kernel, bias, uniform(rng, affine_shape, 0.5, 1.5), uniform(rng, affine_shape, -0.5, 0.5))


def build_hwc_keras(seed: int) -> Any:
    from onnxmend.models.keras_layers import ContribLayerNorm

    return _keras_model(seed, ContribLayerNorm(epsilon=CONTRIB_EPS, name="layer_norm"), "layernorm_hwc")


def build_last_keras(seed: int) -> Any:
    keras = require("keras")

    norm = keras.layers.LayerNormalization(axis=-1, epsilon=KERAS_LN_EPS, name="layer_norm")
    return _keras_model(seed, norm, "layernorm_last")


def _keras_model(seed: int, norm: Any, name: str) -> Any:
    keras = require("keras")

    w = norm_weights(seed)
    x = keras.Input((SIZE, SIZE, CHANNELS), name="x")
    conv = keras.layers.Conv2D(CHANNELS, 1, name="conv")
    y = norm(conv(x))
    conv.set_weights([w.kernel, w.bias])
    norm.set_weights([w.gamma, w.beta])
    return keras.Model(x, y, name=name)


def build_groupnorm1_torch(seed: int) -> Any:
    torch = require("torch")

    w = norm_weights(seed)
    norm = torch.nn.GroupNorm(1, CHANNELS, eps=CONTRIB_EPS)
    return _torch_model(w, norm)


def build_chw_torch(seed: int) -> Any:
    torch = require("torch")

    w = norm_weights(seed, (CHANNELS, SIZE, SIZE))
    norm = torch.nn.LayerNorm([CHANNELS, SIZE, SIZE], eps=TORCH_LN_EPS)
    return _torch_model(w, norm)


def build_last_torch(seed: int) -> Any:
    """Faithful port of ``layernorm-last-keras``: statistics over C at every pixel."""
    return _torch_model(norm_weights(seed), channels_last_layer_norm(CHANNELS, KERAS_LN_EPS))


def build_last_torch_wrong_axes(seed: int) -> Any:
    """The port with the wrong axes: ``GroupNorm(1, C)`` normalizes over (C, H, W)."""
    torch = require("torch")

    return _torch_model(norm_weights(seed), torch.nn.GroupNorm(1, CHANNELS, eps=KERAS_LN_EPS))


def channels_last_layer_norm(channels: int, eps: float) -> Any:
    """An ``nn.LayerNorm(channels)`` that takes NCHW and normalizes over C at every pixel."""
    torch = require("torch")

    class ChannelsLastLayerNorm(torch.nn.LayerNorm):
        def forward(self, x: Any) -> Any:
            return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)

    return ChannelsLastLayerNorm(channels, eps=eps)


def _torch_model(w: NormWeights, norm: Any) -> Any:
    torch = require("torch")

    conv = torch.nn.Conv2d(CHANNELS, CHANNELS, 1)
    load_torch_conv(conv, w.kernel, w.bias)
    with torch.no_grad():
        norm.weight.copy_(torch.from_numpy(w.gamma))
        norm.bias.copy_(torch.from_numpy(w.beta))
    return torch.nn.Sequential(conv, norm)
