"""Semantics that differ by name only — Dropout's ``keep_prob`` and BatchNorm's momentum (MindSpore vs torch).

MindSpore's ``Dropout(keep_prob=0.8)`` is torch's ``Dropout(p=0.2)``; MindSpore's
``BatchNorm2d(momentum=0.9)`` — ``moving = momentum·moving + (1 − momentum)·batch`` — is torch's
``BatchNorm2d(momentum=0.1)``, whose ``momentum`` weighs the *batch*: the conventions are each other's
``1 − m``. A port that copies the number keeps the wrong statistics in training; in inference both
twins are the same function (Dropout is the identity, BN uses its moving statistics), which is what the
exported graphs compute.

Twins from one set of numpy weights: conv 3→8 k3 (pad 1, no bias), BN (calibrated statistics, eps
1e-5), ReLU, Dropout, conv 8→4 k1 with bias. :func:`mindspore_moving_mean` and
:func:`torch_moving_mean` take one training step on a seeded batch and return the BN's moving mean, so a
test can show which momenta agree.
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
    hwio_to_oihw,
    load_torch_batchnorm,
    load_torch_conv,
    rng_for,
    uniform,
)

SIZE = 16
MINDSPORE_MOMENTUM = 0.9
TORCH_MOMENTUM = 1 - MINDSPORE_MOMENTUM
KEEP_PROB = 0.8
EPS = 1e-5


@dataclass(frozen=True)
class Weights:
    conv1: np.ndarray  # [3, 3, 3, 8]
    norm: BatchNormWeights
    conv2: np.ndarray  # [1, 1, 8, 4]
    bias: np.ndarray


def twin_weights(seed: int) -> Weights:
    rng = rng_for("dropout-bn", seed)
    conv1 = conv_kernel(rng, 3, 3, 3, 8)
    y = conv2d_nhwc(rng.standard_normal((4, SIZE, SIZE, 3)).astype(np.float32), conv1, 1, (1, 1, 1, 1))
    norm = BatchNormWeights(uniform(rng, 8, 0.5, 1.5), uniform(rng, 8, -0.3, 0.3),
                            y.mean(axis=(0, 1, 2)).astype(np.float32), y.var(axis=(0, 1, 2)).astype(np.float32))
    return Weights(conv1, norm, conv_kernel(rng, 1, 1, 8, 4), uniform(rng, 4, -0.2, 0.2))


def build_torch(seed: int) -> Any:
    torch = require("torch")
    w = twin_weights(seed)
    conv1, bn, conv2 = torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8, EPS, TORCH_MOMENTUM), torch.nn.Conv2d(8, 4, 1)
    load_torch_conv(conv1, w.conv1)
    load_torch_batchnorm(bn, w.norm)
    load_torch_conv(conv2, w.conv2, w.bias)
    return torch.nn.Sequential(conv1, bn, torch.nn.ReLU(), torch.nn.Dropout(p=1 - KEEP_PROB), conv2)


def build_mindspore(seed: int, momentum: float = MINDSPORE_MOMENTUM) -> Any:
    ms = require("mindspore")
    w = twin_weights(seed)
    conv1 = ms.nn.Conv2d(3, 8, 3, pad_mode="pad", padding=1, has_bias=False)
    bn = ms.nn.BatchNorm2d(8, eps=EPS, momentum=momentum)
    conv2 = ms.nn.Conv2d(8, 4, 1, has_bias=True)
    conv1.weight.set_data(ms.Tensor(hwio_to_oihw(w.conv1)))
    for param, value in ((bn.gamma, w.norm.gamma), (bn.beta, w.norm.beta), (bn.moving_mean, w.norm.mean),
                         (bn.moving_variance, w.norm.var)):
        param.set_data(ms.Tensor(value))
    conv2.weight.set_data(ms.Tensor(hwio_to_oihw(w.conv2)))
    conv2.bias.set_data(ms.Tensor(w.bias))
    return ms.nn.SequentialCell([conv1, bn, ms.nn.ReLU(), ms.nn.Dropout(keep_prob=KEEP_PROB), conv2])


def training_batch(seed: int) -> np.ndarray:
    return np.random.default_rng(seed + 1).standard_normal((4, 3, SIZE, SIZE)).astype(np.float32)


def mindspore_moving_mean(seed: int, momentum: float) -> np.ndarray:
    """The MindSpore twin's BN moving mean after one training-mode step on :func:`training_batch`."""
    ms = require("mindspore")
    cell = build_mindspore(seed, momentum)
    cell.set_train(True)
    cell(ms.Tensor(training_batch(seed)))
    return cell[1].moving_mean.asnumpy().copy()


def torch_moving_mean(seed: int) -> np.ndarray:
    """The torch twin's BN running mean after one training-mode step on :func:`training_batch`."""
    torch = require("torch")
    module = build_torch(seed).train()
    with torch.no_grad():
        module(torch.from_numpy(training_batch(seed)))
    return module[1].running_mean.numpy().copy()
