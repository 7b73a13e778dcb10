"""Structural alignment: plumbing is left out, weights shapes are the keys, a LayerNorm and a GroupNorm of
the same channels align, what does not align is listed with coverage."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from onnxmend.runtime.layers.align import align, tokens
from tests.builders import make_model, node, rand, transpose

F32 = TensorProto.FLOAT


def nhwc_port():
    """A tf2onnx-like graph: Transposes around Conv, LayerNormalization over the last axis."""
    inits = {"w": rand((8, 3, 3, 3)), "g": rand((8,), 2), "b": rand((8,), 3)}
    nodes = [node("Conv", ["x", "w"], "c", pads=[1, 1, 1, 1]), node("Relu", ["c"], "r"),
             transpose("r", "t", [0, 2, 3, 1]), node("LayerNormalization", ["t", "g", "b"], "n", axis=-1),
             transpose("n", "y", [0, 3, 1, 2])]
    return make_model(nodes, {"x": ((1, 3, 8, 8), F32)}, ["y"], inits, opset=18)


def nchw_port(extra_conv: bool = False):
    """The torch-like port: GroupNorm(1, C) with a (C,) scale; optionally one Conv more."""
    inits = {"w": rand((8, 3, 3, 3)), "g": rand((8,), 2), "b": rand((8,), 3), "w2": rand((8, 8, 1, 1), 4)}
    nodes = [node("Conv", ["x", "w"], "c", pads=[1, 1, 1, 1]), node("Relu", ["c"], "r"),
             node("GroupNormalization", ["r", "g", "b"], "n", num_groups=1)]
    if extra_conv:
        nodes.append(node("Conv", ["n", "w2"], "y"))
    return make_model(nodes, {"x": ((1, 3, 8, 8), F32)}, ["y" if extra_conv else "n"], inits, opset=18, check=False)


def test_tokens_leave_out_plumbing_and_key_weighted_ops_by_shape() -> None:
    assert [t.text for t in tokens(nhwc_port())] == ["conv [8, 3, 3, 3]", "Relu", "norm [8]"]


def test_a_layernorm_and_a_groupnorm_of_the_same_channels_align() -> None:
    result = align(nhwc_port(), nchw_port())
    assert [(a.output, b.output) for a, b in result.pairs] == [("c", "c"), ("r", "r"), ("n", "n")]
    assert result.coverage_a == result.coverage_b == 1.0


def test_what_does_not_align_is_listed() -> None:
    result = align(nhwc_port(), nchw_port(extra_conv=True))
    assert [t.text for t in result.unaligned_b] == ["conv [8, 8, 1, 1]"]
    assert result.coverage_a == 1.0 and np.isclose(result.coverage_b, 2 / 3)
