"""Seeded input synthesis, so every comparison in onnxmend is reproducible.

An input past :data:`MAX_INPUT_BYTES` (a 120 GB ``--input``, a graph that declares a dim of 10^9) is
refused in one sentence before anything is allocated.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from onnxmend.core.errors import OnnxmendError
from onnxmend.core.specs import TensorSpec

MAX_INPUT_BYTES = 4 << 30


def synthesize(
    specs: Sequence[TensorSpec], seed: int = 0, batch: int = 1, default_dim: int = 8
) -> dict[str, np.ndarray]:
    """Standard-normal floats, small non-negative ints (or ``value_range``), random bools."""
    rng = np.random.default_rng(seed)
    feeds: dict[str, np.ndarray] = {}
    for spec in specs:
        shape = spec.concrete_shape(batch, default_dim)
        dtype = np.dtype(spec.dtype)
        size = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        if size > MAX_INPUT_BYTES:
            shown = "x".join(map(str, shape))
            raise OnnxmendError(f"Input {spec.name} of shape {shown} would take {size / 1e9:.0f} GB; "
                                "give a smaller size with --input.")
        if dtype == np.bool_:
            feeds[spec.name] = rng.random(shape) > 0.5
        elif np.issubdtype(dtype, np.integer):
            low, high = spec.value_range or (0, 2)
            feeds[spec.name] = rng.integers(int(low), int(high), size=shape).astype(dtype)
        else:
            low_high = spec.value_range
            if low_high:
                values = rng.uniform(low_high[0], low_high[1], size=shape)
            else:
                values = rng.standard_normal(shape)
            feeds[spec.name] = values.astype(dtype)
    return feeds
