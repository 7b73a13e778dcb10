"""Weight verdicts: equal, transposed wrong (which axes), scaled per channel, spelled out over more axes."""

from __future__ import annotations

import numpy as np

from onnxmend.runtime.layers.weights import compare_weights

RNG = np.random.default_rng(0)
KERNEL = RNG.standard_normal((8, 1, 3, 3))


def test_equal_weights() -> None:
    verdict = compare_weights(KERNEL, KERNEL.copy())
    assert verdict.equal and verdict.summary == "equal"


def test_a_kernel_with_kh_and_kw_swapped_is_a_weight_difference() -> None:
    verdict = compare_weights(KERNEL, KERNEL.transpose(0, 1, 3, 2))
    assert not verdict.equal
    assert verdict.summary.startswith("equal after swapping kh and kw")


def test_a_per_output_channel_factor_points_at_a_folded_norm() -> None:
    scale = np.linspace(0.9, 1.1, 8).reshape(8, 1, 1, 1)
    verdict = compare_weights(KERNEL, KERNEL * scale)
    assert not verdict.equal and "one factor per output channel" in verdict.summary


def test_a_per_channel_affine_spelled_out_over_hw_is_equal() -> None:
    gamma = RNG.standard_normal(16)
    verdict = compare_weights(gamma, np.broadcast_to(gamma.reshape(16, 1, 1), (16, 8, 8)))
    assert verdict.equal and "[16, 8, 8]" in verdict.summary


def test_different_weights_and_missing_ones() -> None:
    other = RNG.standard_normal(KERNEL.shape)
    assert compare_weights(KERNEL, other).summary.startswith("differ (max abs")
    assert not compare_weights(KERNEL, None).equal
    assert compare_weights(KERNEL, KERNEL[:4]).summary == "shapes differ: [8, 1, 3, 3] vs [4, 1, 3, 3]"
