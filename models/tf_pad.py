"""Seeds 001/004: a torch network that emulates TF "same" padding, as ported TF models do.

``tf-pad-dynamic-torch`` computes every pad from ``x.shape[-2:]`` at run time (the timm ``pad_same``
idiom)::

    pad_h = max((ceil(ih / s) - 1) * s + (k - 1) * d + 1 - ih, 0)
    x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])

so the legacy TorchScript exporter traces ``Shape → Gather → … → Pad`` chains, while the dynamo exporter,
specialising on static shapes, folds them to constant pads. ``tf-pad-static-torch`` is its twin with the
same weights and the pads written as constants (``F.pad`` with fixed amounts), the baseline for op counts.

Six conv+ReLU blocks on 1x3x56x56: stride 2 and stride 1, kernels 3 and 5, even and odd sizes
(pads (0,1), (1,1), (2,2)). This module imports torch; the registry imports it only to build.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from onnxmend.models.weights import conv_kernel, load_torch_conv, rng_for, tf_same_pads, uniform

SIZE = 56
IN_CHANNELS = 3
# (out channels, kernel, stride)
LAYERS: tuple[tuple[int, int, int], ...] = ((16, 3, 2), (16, 3, 1), (32, 3, 2), (32, 5, 1), (64, 3, 2), (64, 3, 2))


def same_total_pad(size: int, kernel: int, stride: int, dilation: int = 1) -> int:
    return max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)


class DynamicSamePad(torch.nn.Module):
    """TF "same" padding computed from the input's shape on every call."""

    def __init__(self, kernel: int, stride: int, dilation: int = 1) -> None:
        super().__init__()
        self.kernel, self.stride, self.dilation = kernel, stride, dilation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ih, iw = x.shape[-2:]
        pad_h = same_total_pad(ih, self.kernel, self.stride, self.dilation)
        pad_w = same_total_pad(iw, self.kernel, self.stride, self.dilation)
        if pad_h > 0 or pad_w > 0:
            x = F.pad(x, [pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2])
        return x


class StaticPad(torch.nn.Module):
    """``F.pad`` with amounts fixed when the model was written."""

    def __init__(self, pads: tuple[int, int, int, int]) -> None:
        super().__init__()
        self.pads = list(pads)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pad(x, self.pads)


def pad_weights(seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = rng_for("tf-pad", seed)
    weights, cin = [], IN_CHANNELS
    for cout, k, _ in LAYERS:
        weights.append((conv_kernel(rng, k, k, cin, cout), uniform(rng, cout, -0.2, 0.2)))
        cin = cout
    return weights


def build_dynamic(seed: int) -> torch.nn.Module:
    return _network(seed, dynamic=True)


def build_static(seed: int) -> torch.nn.Module:
    return _network(seed, dynamic=False)


def _network(seed: int, dynamic: bool) -> torch.nn.Module:
    layers: list[torch.nn.Module] = []
    size = SIZE
    for (cout, k, s), (kernel, bias) in zip(LAYERS, pad_weights(seed)):
        if dynamic:
            layers.append(DynamicSamePad(k, s))
        else:
            before, after = tf_same_pads(size, k, s)
            if before or after:
                layers.append(StaticPad((before, after, before, after)))
        conv = torch.nn.Conv2d(kernel.shape[2], cout, k, stride=s)
        load_torch_conv(conv, kernel, bias)
        layers += [conv, torch.nn.ReLU()]
        size = -(-size // s)
    return torch.nn.Sequential(*layers)
