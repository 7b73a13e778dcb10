"""Shared numpy weights for twin models, and the framework-side loaders.

Twins are built from ONE set of numpy arrays in the Keras layout (kernels ``[kh, kw, in, out]``,
depthwise ``[kh, kw, C, 1]``) and converted for torch (``[out, in, kh, kw]``, ``[C, 1, kh, kw]``), so
any difference between the twins is the port's, never the weights'. Torch and Keras are imported only
inside the functions that need them.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from onnxmend.core.deps import require


def rng_for(name: str, seed: int) -> np.random.Generator:
    """A generator per (model family, seed): twins that ask with the same name get the same weights."""
    return np.random.default_rng([seed, zlib.crc32(name.encode())])


def conv_kernel(rng: np.random.Generator, kh: int, kw: int, cin: int, cout: int, gain: float = 2.0) -> np.ndarray:
    """He-normal kernel in the Keras layout ``[kh, kw, in, out]``."""
    std = math.sqrt(gain / (kh * kw * cin))
    return (rng.standard_normal((kh, kw, cin, cout)) * std).astype(np.float32)


def depthwise_kernel(rng: np.random.Generator, kh: int, kw: int, channels: int) -> np.ndarray:
    """Depthwise kernel in the Keras layout ``[kh, kw, C, 1]``."""
    std = math.sqrt(2.0 / (kh * kw))
    return (rng.standard_normal((kh, kw, channels, 1)) * std).astype(np.float32)


def uniform(rng: np.random.Generator, shape: Sequence[int] | int, low: float, high: float) -> np.ndarray:
    return rng.uniform(low, high, size=shape).astype(np.float32)


def hwio_to_oihw(kernel: np.ndarray) -> np.ndarray:
    """Keras ``[kh, kw, in, out]`` → torch ``[out, in, kh, kw]``."""
    return np.ascontiguousarray(kernel.transpose(3, 2, 0, 1))


def depthwise_to_torch(kernel: np.ndarray) -> np.ndarray:
    """Keras depthwise ``[kh, kw, C, 1]`` → torch grouped ``[C, 1, kh, kw]``."""
    return np.ascontiguousarray(kernel.transpose(2, 3, 0, 1))


def tf_same_pads(size: int, kernel: int, stride: int, dilation: int = 1) -> tuple[int, int]:
    """TF ``padding="same"`` along one axis: (before, after), the odd element going after."""
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


@dataclass(frozen=True)
class BatchNormWeights:
    gamma: np.ndarray
    beta: np.ndarray
    mean: np.ndarray
    var: np.ndarray

    def keras(self) -> list[np.ndarray]:
        """In the order ``keras.layers.BatchNormalization.set_weights`` expects."""
        return [self.gamma, self.beta, self.mean, self.var]


def conv2d_nhwc(x: np.ndarray, kernel: np.ndarray, stride: int, pads: tuple[int, int, int, int]) -> np.ndarray:
    """Plain numpy convolution (NHWC, kernel ``[kh, kw, in, out]``, pads top/bottom/left/right), used to
    calibrate batch-norm statistics without importing either framework."""
    top, bottom, left, right = pads
    padded = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)))
    kh, kw = kernel.shape[:2]
    windows = np.lib.stride_tricks.sliding_window_view(padded, (kh, kw), axis=(1, 2))[:, ::stride, ::stride]
    return np.einsum("nhwcij,ijco->nhwo", windows, kernel, optimize=True).astype(np.float32)


# --- torch side -------------------------------------------------------------------------------


def load_torch_conv(
    conv: Any, kernel_hwio: np.ndarray, bias: np.ndarray | None = None, depthwise: bool = False,
) -> None:
    """Copy a Keras-layout kernel (and bias) into a ``torch.nn.Conv2d``."""
    torch = require("torch")

    weight = depthwise_to_torch(kernel_hwio) if depthwise else hwio_to_oihw(kernel_hwio)
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(weight))
        if bias is not None:
            conv.bias.copy_(torch.from_numpy(bias))


def load_torch_batchnorm(bn: Any, weights: BatchNormWeights) -> None:
    torch = require("torch")

    with torch.no_grad():
        bn.weight.copy_(torch.from_numpy(weights.gamma))
        bn.bias.copy_(torch.from_numpy(weights.beta))
        bn.running_mean.copy_(torch.from_numpy(weights.mean))
        bn.running_var.copy_(torch.from_numpy(weights.var))


def randomize_norm_affine(module: Any, rng: np.random.Generator) -> None:
    """Give every BatchNorm/LayerNorm/GroupNorm in ``module`` a non-identity affine."""
    torch = require("torch")

    norms = (torch.nn.BatchNorm2d, torch.nn.LayerNorm, torch.nn.GroupNorm)
    with torch.no_grad():
        for sub in module.modules():
            if isinstance(sub, norms) and getattr(sub, "weight", None) is not None:
                sub.weight.copy_(torch.from_numpy(uniform(rng, tuple(sub.weight.shape), 0.5, 1.5)))
                sub.bias.copy_(torch.from_numpy(uniform(rng, tuple(sub.bias.shape), -0.3, 0.3)))


def calibrate_batchnorm(module: Any, inputs: Sequence[Any]) -> None:
    """Set every BatchNorm's running statistics to those of one train-mode pass over ``inputs``
    (momentum 1 for that pass), then leave the module in eval mode: realistic statistics, so deep
    random networks neither explode nor collapse."""
    torch = require("torch")

    bns = [m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    saved = [bn.momentum for bn in bns]
    for bn in bns:
        bn.momentum = 1.0
    module.train()
    with torch.no_grad():
        module(*inputs)
    for bn, momentum in zip(bns, saved):
        bn.momentum = momentum
    module.eval()


def torch_example(
    shape: Sequence[int], seed: int, dtype: str = "float32", value_range: tuple[float, float] | None = None,
) -> Any:
    """A seeded example tensor: standard normal floats, or integers in ``value_range`` (default [0, 2))."""
    torch = require("torch")

    gen = torch.Generator().manual_seed(seed)
    if dtype.startswith("float"):
        return torch.randn(*shape, generator=gen, dtype=getattr(torch, dtype))
    low, high = value_range or (0, 2)
    return torch.randint(int(low), int(high), tuple(shape), generator=gen, dtype=getattr(torch, dtype))
