"""fold-conv-input-affine: per-channel Mul/Add chains feeding a Conv fold into it; refusals with reasons."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from onnxmend.passes.folding.fold_conv_input_affine import FoldConvInputAffine
from tests.builders import apply, assert_same, make_model, node, ops, rand

F32 = TensorProto.FLOAT
X = {"x": ((1, 4, 4, 4), F32)}
S, T = rand((1, 4, 1, 1), 3) + 0.5, rand((1, 4, 1, 1), 4)


def feeding_conv(head: list[onnx.NodeProto], conv_input: str, inits: dict[str, np.ndarray], *, pads=(0, 0, 0, 0),
                 group: int = 1, outputs: tuple[str, ...] = ("y",), bias: bool = True) -> onnx.ModelProto:
    weights = {"w": rand((6, 4 // group, 3, 3), 1), **({"b": rand((6,), 2)} if bias else {})}
    conv = node("Conv", [conv_input, "w", "b"] if bias else [conv_input, "w"], "y", pads=list(pads), group=group)
    return make_model([*head, conv], X, list(outputs), {**weights, **inits})


def folded(model: onnx.ModelProto):
    out, result = apply(model, FoldConvInputAffine())
    onnx.checker.check_model(out, full_check=True)
    return out, result


@pytest.mark.parametrize("bias", [True, False])
def test_mul_then_add_fold_into_an_unpadded_conv(bias: bool) -> None:
    model = feeding_conv([node("Mul", ["x", "s"], "xs"), node("Add", ["xs", "t"], "xt")], "xt", {"s": S, "t": T}, bias=bias)
    out, result = folded(model)
    assert result.changed == 1 and result.skipped == [] and ops(out) == ["Conv"]
    assert_same(model, out, atol=1e-5, rtol=1e-5)
    _, again = folded(out)
    assert again.changed == 0


def test_add_then_mul_fold_with_the_shift_scaled() -> None:
    model = feeding_conv([node("Add", ["x", "t"], "xt"), node("Mul", ["s", "xt"], "xs")], "xs", {"s": S, "t": T})
    out, result = folded(model)
    assert result.changed == 1 and ops(out) == ["Conv"]
    assert_same(model, out, atol=1e-5, rtol=1e-5)


def test_a_scale_folds_into_a_padded_conv_and_a_scalar_scale_too() -> None:
    model = feeding_conv([node("Mul", ["x", "s"], "xs"), node("Mul", ["xs", "k"], "xk")], "xk",
                         {"s": S, "k": np.asarray(2.0, np.float32)}, pads=(1, 1, 1, 1))
    out, result = folded(model)
    assert result.changed == 1 and ops(out) == ["Conv"]
    assert_same(model, out, atol=1e-5, rtol=1e-5)


def test_a_shift_never_folds_into_a_padded_conv() -> None:
    model = feeding_conv([node("Mul", ["x", "s"], "xs"), node("Add", ["xs", "t"], "xt")], "xt", {"s": S, "t": T},
                         pads=(1, 1, 1, 1))
    out, result = folded(model)
    assert result.changed == 0 and sorted(ops(out)) == ["Add", "Conv", "Mul"]
    assert [s.reason for s in result.skipped] == ["Conv Conv_y pads its input, so the Add before it cannot fold"]


def test_with_padding_only_the_scale_next_to_the_conv_folds() -> None:
    model = feeding_conv([node("Add", ["x", "t"], "xt"), node("Mul", ["xt", "s"], "xs")], "xs", {"s": S, "t": T},
                         pads=(1, 1, 1, 1))
    out, result = folded(model)
    assert result.changed == 1 and ops(out) == ["Add", "Conv"]
    assert_same(model, out, atol=1e-5, rtol=1e-5)


def test_the_chain_stops_at_an_intermediate_another_node_reads() -> None:
    head = [node("Mul", ["x", "s"], "xs"), node("Relu", ["xs"], "r"), node("Add", ["xs", "t"], "xt")]
    model = feeding_conv(head, "xt", {"s": S, "t": T}, outputs=("y", "r"))
    out, result = folded(model)
    assert result.changed == 1 and sorted(ops(out)) == ["Conv", "Mul", "Relu"]
    assert_same(model, out, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("head, inits, kwargs, reason", [
    ([node("Mul", ["x", "s"], "xs")], {"s": S}, {"group": 2}, "Conv Conv_y is grouped"),
    ([node("Mul", ["x", "s"], "xs")], {"s": rand((1, 1, 4, 1), 5)}, {},
     "Mul Mul_xs constant of shape (1, 1, 4, 1) varies along spatial axis 2 of the rank-4 input"),
    ([node("Mul", ["x", "s"], "xs")], {"s": rand((4,), 5)}, {},  # a [C] broadcasts over W, not channels
     "Mul Mul_xs constant of shape (4,) varies along spatial axis 3 of the rank-4 input"),
    ([node("Relu", ["x"], "r"), node("Mul", ["x", "r"], "xs")], {}, {}, "Mul Mul_xs has no constant operand"),
    ([node("Mul", ["x", "s"], "xs")], {"s": S}, {"outputs": ("y", "xs")}, "xs is a graph output"),
])
def test_refusals_name_their_reason(head, inits, kwargs, reason) -> None:
    model = feeding_conv(head, "xs", inits, **kwargs)
    out, result = folded(model)
    assert result.changed == 0 and sorted(ops(out)) == sorted(ops(model))
    (skip,) = result.skipped
    assert skip.reason.startswith(reason)


def test_a_shared_constant_is_not_mutated() -> None:
    head = [node("Mul", ["x", "s"], "xs"), node("Mul", ["x", "s"], "other")]
    model = feeding_conv(head, "xs", {"s": S}, outputs=("y", "other"))
    out, result = folded(model)
    assert result.changed == 1
    values = {i.name: numpy_helper.to_array(i) for i in out.graph.initializer}
    np.testing.assert_array_equal(values["s"], S)
    assert_same(model, out, atol=1e-5, rtol=1e-5)
