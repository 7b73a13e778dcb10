"""Seed 002: a deep Conv+BN+ReLU stack, Keras vs torch, and the epsilon that makes them drift.

Keras ``BatchNormalization`` defaults to epsilon 1e-3, torch ``BatchNorm2d`` to 1e-5. With the same
weights and statistics, every layer whose running variance is small scales its output by
``sqrt((var + 1e-3) / (var + 1e-5))``; the error compounds through the stack (seed 002: about 0.6 max
error after ~70 layers). Three twins from one set of numpy weights: the Keras original, the torch port
with torch's default eps (drifts), and the torch port with ``eps=1e-3`` (matches).

Layers: ``DEPTH`` blocks of conv 3x3 (stride 1, "same", no bias, He-normal) + BN (+ ReLU except the
last). Running statistics are calibrated in numpy on a synthetic batch (variances 0.3–3); the default-eps
torch twin then drifts by ~0.5 max abs at the output, the eps-fixed twin stays within fp32 noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from onnxmend.core.deps import require
from onnxmend.models.weights import (
    BatchNormWeights,
    conv2d_nhwc,
    conv_kernel,
    load_torch_batchnorm,
    load_torch_conv,
    rng_for,
    uniform,
)

SIZE = 16
IN_CHANNELS = 3
CHANNELS = 8
DEPTH = 24
KERAS_EPS = 1e-3
TORCH_EPS = 1e-5
CALIBRATION_BATCH = 4


@dataclass(frozen=True)
class StackWeights:
    kernels: list[np.ndarray]  # [3, 3, in, out] each
    norms: list[BatchNormWeights]


def stack_weights(seed: int) -> StackWeights:
    rng = rng_for("bn-stack", seed)
    kernels = [conv_kernel(rng, 3, 3, IN_CHANNELS if i == 0 else CHANNELS, CHANNELS) for i in range(DEPTH)]
    affine = [(uniform(rng, CHANNELS, 0.5, 1.5), uniform(rng, CHANNELS, -0.3, 0.3)) for _ in range(DEPTH)]
    x = rng.standard_normal((CALIBRATION_BATCH, SIZE, SIZE, IN_CHANNELS)).astype(np.float32)
    norms = []
    for i, (kernel, (gamma, beta)) in enumerate(zip(kernels, affine)):
        y = conv2d_nhwc(x, kernel, 1, (1, 1, 1, 1))
        mean, var = y.mean(axis=(0, 1, 2)), y.var(axis=(0, 1, 2))
        norms.append(BatchNormWeights(gamma, beta, mean.astype(np.float32), var.astype(np.float32)))
        x = gamma * (y - mean) / np.sqrt(var + KERAS_EPS) + beta
        if i + 1 < DEPTH:
            x = np.maximum(x, 0)
    return StackWeights(kernels, norms)


def build_keras(seed: int) -> Any:
    keras = require("keras")

    w = stack_weights(seed)
    x = keras.Input((SIZE, SIZE, IN_CHANNELS), name="x")
    y, pairs = x, []
    for i in range(DEPTH):
        conv = keras.layers.Conv2D(CHANNELS, 3, padding="same", use_bias=False, name=f"conv{i}")
        bn = keras.layers.BatchNormalization(epsilon=KERAS_EPS, name=f"bn{i}")
        y = bn(conv(y))
        pairs.append((conv, bn))
        if i + 1 < DEPTH:
            y = keras.layers.ReLU(name=f"relu{i}")(y)
    for (conv, bn), kernel, norm in zip(pairs, w.kernels, w.norms):
        conv.set_weights([kernel])
        bn.set_weights(norm.keras())
    return keras.Model(x, y, name="bn_stack")


def build_torch(seed: int) -> Any:
    """The port as usually written: torch's default BatchNorm2d eps (1e-5)."""
    return _torch_stack(seed, TORCH_EPS)


def build_torch_eps_fixed(seed: int) -> Any:
    """The port with Keras's epsilon carried over."""
    return _torch_stack(seed, KERAS_EPS)


def _torch_stack(seed: int, eps: float) -> Any:
    torch = require("torch")

    w = stack_weights(seed)
    layers: list[torch.nn.Module] = []
    for i, (kernel, norm) in enumerate(zip(w.kernels, w.norms)):
        conv = torch.nn.Conv2d(kernel.shape[2], CHANNELS, 3, padding=1, bias=False)
        bn = torch.nn.BatchNorm2d(CHANNELS, eps=eps)
        load_torch_conv(conv, kernel)
        load_torch_batchnorm(bn, norm)
        layers += [conv, bn]
        if i + 1 < DEPTH:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)
