"""pointwise-conv-to-matmul: 1×1 Convs become Transpose/MatMul/Transpose, the pairs cancel between
neighbouring pointwise layers, and strided, padded, grouped or non-constant Convs are left with a reason."""

from __future__ import annotations

import re

import numpy as np
import pytest
from onnx import TensorProto

from onnxmend.passes.infra.base import PassContext
from onnxmend.passes.infra.presets import PREPARE_FOR_INT8
from onnxmend.passes.layout.pointwise_conv_to_matmul import PointwiseConvToMatmul
from onnxmend.passes.layout.push_transposes import PushTransposes
from tests.builders import apply, assert_same, candidates, init, make_model, node, op_counts, rand, run_passes, value

ATOL = 1e-5  # a MatMul sums the channels in another order than the Conv kernel


def pointwise(rank: int = 4, bias: bool = True, **attrs):
    spatial = [5, 6, 7][: rank - 2]
    inputs = ["x", "w", "b"] if bias else ["x", "w"]
    inits = [init("w", rand([8, 4] + [1] * (rank - 2), seed=2))] + ([init("b", rand([8], seed=3))] if bias else [])
    return make_model([node("Conv", inputs, "y", **attrs)], [value("x", [2, 4, *spatial])],
                      [value("y", [2, 8, *spatial] if not attrs else None)], inits)


@pytest.mark.parametrize("rank", [3, 4, 5])
@pytest.mark.parametrize("bias", [True, False])
def test_a_pointwise_conv_becomes_a_matmul_between_transposes(rank: int, bias: bool) -> None:
    model = pointwise(rank, bias)
    out, result = apply(model, PointwiseConvToMatmul())
    assert result.changed == 1
    assert op_counts(out) == {"Transpose": 2, "MatMul": 1, **({"Add": 1} if bias else {})}
    perms = [list(n.attribute[0].ints) for n in out.graph.node if n.op_type == "Transpose"]
    assert perms == [[0, *range(2, rank), 1], [0, rank - 1, *range(1, rank - 1)]]
    assert_same(model, out, atol=ATOL)
    assert apply(out, PointwiseConvToMatmul())[1].changed == 0  # idempotent: no Conv left


def test_two_pointwise_layers_keep_one_transpose_pair_after_push_transposes() -> None:
    """pw1 ─ Relu ─ pw2: the inner Transposes cancel, as in a ConvNeXt block."""
    nodes = [node("Conv", ["x", "w1", "b1"], "h"), node("Relu", ["h"], "r"), node("Conv", ["r", "w2"], "y")]
    inits = [init("w1", rand([16, 4, 1, 1], seed=4)), init("b1", rand([16], seed=5)), init("w2", rand([4, 16, 1, 1], seed=6))]
    model = make_model(nodes, [value("x", [1, 4, 6, 6])], [value("y", [1, 4, 6, 6])], inits)
    out, report = run_passes(model, [PointwiseConvToMatmul(), PushTransposes()], PassContext(opset=17, keep_matmuls=True))
    assert op_counts(out) == {"Transpose": 2, "MatMul": 2, "Add": 1, "Relu": 1}
    assert report.verified
    assert_same(model, out, atol=ATOL)


def test_outside_int8_preparation_push_transposes_turns_the_matmuls_back_into_convs() -> None:
    """Why PREPARE_FOR_INT8 sets keep_matmuls: the fix preset's push-transposes makes 1x1 Convs of MatMuls."""
    model = pointwise()
    out, _ = run_passes(model, [PointwiseConvToMatmul(), PushTransposes()])
    assert op_counts(out) == {"Conv": 1, "Add": 1}


@pytest.mark.parametrize("attrs, reason", [
    ({"strides": [2, 2]}, r"strided 1×1 Conv subsamples"),
    ({"pads": [1, 1, 1, 1]}, r"padded 1×1 Conv adds a border"),
    ({"auto_pad": "SAME_UPPER"}, r"padded 1×1 Conv adds a border"),
])
def test_strided_or_padded_pointwise_convs_are_left_with_the_reason(attrs: dict, reason: str) -> None:
    out, result = apply(pointwise(**attrs), PointwiseConvToMatmul())
    assert result.changed == 0 and op_counts(out) == {"Conv": 1}
    (skip,) = result.skipped
    assert re.search(reason, skip.reason), skip.reason


def test_a_grouped_pointwise_conv_is_left_with_the_reason() -> None:
    model = make_model([node("Conv", ["x", "w"], "y", group=2)], [value("x", [1, 4, 5, 5])], [value("y", None)],
                       [init("w", rand([8, 2, 1, 1], seed=2))])
    out, result = apply(model, PointwiseConvToMatmul())
    assert result.changed == 0 and "grouped 1×1 Conv is not one MatMul" in result.skipped[0].reason


def test_kernels_larger_than_one_and_activation_weights_are_not_candidates() -> None:
    three = make_model([node("Conv", ["x", "w"], "y")], [value("x", [1, 4, 5, 5])], [value("y", None)],
                       [init("w", rand([8, 4, 3, 3], seed=2))])
    activation = make_model([node("Conv", ["x", "w"], "y")], [value("x", [1, 4, 5, 5]), value("w", [8, 4, 1, 1])],
                            [value("y", None)])
    for model in (three, activation):
        found = candidates(model, PointwiseConvToMatmul())
        assert found.count == 0 and not found.skipped


def test_a_float16_pointwise_conv_keeps_its_dtype() -> None:
    w = init("w", rand([8, 4, 1, 1], seed=2).astype(np.float16))
    model = make_model([node("Conv", ["x", "w"], "y")], [value("x", [1, 4, 5, 5], TensorProto.FLOAT16)],
                       [value("y", [1, 8, 5, 5], TensorProto.FLOAT16)], [w])
    out, result = apply(model, PointwiseConvToMatmul())
    assert result.changed == 1
    assert_same(model, out, atol=2e-2)


def test_the_int8_preparation_is_the_rewrite_then_transposes_pushed() -> None:
    assert PREPARE_FOR_INT8[:2] == ("pointwise-conv-to-matmul", "push-transposes")
