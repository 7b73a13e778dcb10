"""fold-conv-affine: Mul/Add chains after Conv/ConvTranspose fold into weights and bias; refusals with reasons."""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, numpy_helper

from onnxmend.core.graph import op_histogram
from onnxmend.passes.folding.fold_conv_affine import FoldConvAffine
from tests.builders import apply, make_model, node, ops, rand, run, run_passes, seeded_feeds

F32 = TensorProto.FLOAT
X = {"x": ((1, 4, 5, 5), F32)}


def rel_err(a: onnx.ModelProto, b: onnx.ModelProto) -> float:
    feeds = seeded_feeds(a)
    worst = 0.0
    for ra, rb in zip(run(a, feeds), run(b, feeds)):
        worst = max(worst, float(np.max(np.abs(ra.astype(np.float64) - rb)) / np.max(np.abs(ra))))
    return worst


def conv_model(tail: list[onnx.NodeProto], inits: dict[str, np.ndarray], outputs: list[str], bias: bool = True,
               inputs: dict | None = None) -> onnx.ModelProto:
    inputs = inputs or X
    weights = {**({"w": rand((6, 4, 3, 3), 1)} if "w" not in inputs else {}), **({"b": rand((6,), 2)} if bias else {})}
    conv = node("Conv", ["x", "w", "b"] if bias else ["x", "w"], "c", pads=[1, 1, 1, 1])
    return make_model([conv, *tail], inputs, outputs, {**weights, **inits})


def folds_exactly_once(model: onnx.ModelProto, expected_ops: list[str], changed: int = 1) -> onnx.ModelProto:
    out, result = apply(model, FoldConvAffine())
    assert result.changed == changed and result.skipped == []
    assert ops(out) == expected_ops
    onnx.checker.check_model(out, full_check=True)
    assert rel_err(model, out) <= 1e-6
    again, second = apply(out, FoldConvAffine())
    assert second.changed == 0 and ops(again) == expected_ops
    return out


def test_mul_then_add_folds_into_weights_and_bias() -> None:
    inits = {"s": rand((6, 1, 1), 3), "a": rand((1, 6, 1, 1), 4)}
    model = conv_model([node("Mul", ["c", "s"], "m"), node("Add", ["a", "m"], "y")], inits, ["y"])
    out = folds_exactly_once(model, ["Conv"])
    assert [o.name for o in out.graph.output] == ["y"]


def test_add_then_mul_scales_the_shifted_bias() -> None:
    # b' = (b + a)·s, with a scalar shift and a per-channel scale
    inits = {"a": np.float32(0.75), "s": rand((6, 1, 1), 5)}
    model = conv_model([node("Add", ["c", "a"], "p"), node("Mul", ["p", "s"], "y")], inits, ["y"])
    folds_exactly_once(model, ["Conv"])


def test_conv_without_bias_gets_one() -> None:
    model = conv_model([node("Add", ["c", "a"], "y")], {"a": rand((6, 1, 1), 6)}, ["y"], bias=False)
    out = folds_exactly_once(model, ["Conv"])
    conv = out.graph.node[0]
    assert len(conv.input) == 3
    bias = next(i for i in out.graph.initializer if i.name == conv.input[2])
    np.testing.assert_array_equal(numpy_helper.to_array(bias), rand((6, 1, 1), 6).reshape(-1))


def test_constant_node_operand_and_scalar_scale() -> None:
    scale = node("Constant", [], "s", value=numpy_helper.from_array(np.array([1.5], np.float32), "sv"))
    model = conv_model([scale, node("Mul", ["s", "c"], "y")], {}, ["y"])
    folds_exactly_once(model, ["Conv"])


@pytest.mark.parametrize("groups", [1, 2])
def test_conv_transpose_scales_the_second_weight_axis(groups: int) -> None:
    inits = {"w": rand((4, 6 // groups, 3, 3), 7), "b": rand((6,), 8), "s": rand((1, 6, 1, 1), 9), "a": rand((6, 1, 1), 10)}
    nodes = [node("ConvTranspose", ["x", "w", "b"], "t", group=groups, strides=[2, 2]),
             node("Mul", ["t", "s"], "m"), node("Add", ["m", "a"], "y")]
    model = make_model(nodes, X, ["y"], inits)
    folds_exactly_once(model, ["ConvTranspose"])


def test_tf2onnx_style_batch_norm_stack_folds_completely() -> None:
    nodes, inits, src = [], {}, "x"
    for i in range(12):
        inits.update({f"w{i}": rand((4, 4, 3, 3), 20 + i) * 0.3, f"s{i}": rand((4, 1, 1), 40 + i), f"a{i}": rand((4, 1, 1), 60 + i)})
        nodes += [node("Conv", [src, f"w{i}"], f"c{i}", pads=[1, 1, 1, 1]), node("Mul", [f"c{i}", f"s{i}"], f"m{i}"),
                  node("Add", [f"m{i}", f"a{i}"], f"b{i}"), node("Relu", [f"b{i}"], f"r{i}")]
        src = f"r{i}"
    model = make_model(nodes, X, [src], inits)
    out = folds_exactly_once(model, sorted(["Conv"] * 12 + ["Relu"] * 12), changed=12)
    assert len(out.graph.node) == 24


def test_shared_constant_is_copied_not_mutated() -> None:
    inits = {"s": rand((6, 1, 1), 3)}
    nodes = [node("Mul", ["c", "s"], "m"), node("Conv", ["x", "w"], "c2", pads=[1, 1, 1, 1]), node("Add", ["m", "c2"], "y")]
    model = conv_model(nodes, inits, ["y"])
    out, result = apply(model, FoldConvAffine())
    assert result.changed == 1 and ops(out) == ["Add", "Conv", "Conv"]
    w = {i.name: numpy_helper.to_array(i) for i in out.graph.initializer}["w"]
    np.testing.assert_array_equal(w, rand((6, 4, 3, 3), 1))
    assert rel_err(model, out) <= 1e-6


def test_shared_intermediate_stops_the_chain_after_the_mul() -> None:
    inits = {"s": rand((6, 1, 1), 3), "a": rand((6, 1, 1), 4)}
    tail = [node("Mul", ["c", "s"], "m"), node("Add", ["m", "a"], "p"), node("Relu", ["m"], "r"), node("Sub", ["p", "r"], "y")]
    model = conv_model(tail, inits, ["y"])
    out, result = apply(model, FoldConvAffine())
    assert result.changed == 1 and ops(out) == ["Add", "Conv", "Relu", "Sub"]
    assert len(result.skipped) == 1 and re.search(r"m has other consumers \(Add, Relu\)", result.skipped[0].reason)
    assert rel_err(model, out) <= 1e-6


NOT_FOLDED = {
    "shared conv output": (
        [node("Mul", ["c", "s"], "m"), node("Relu", ["c"], "r"), node("Add", ["m", "r"], "y")],
        {"s": rand((6, 1, 1), 3)}, ["y"], None, r"^c has other consumers \(Mul, Relu\)$"),
    "graph output": (
        [node("Mul", ["c", "s"], "y")], {"s": rand((6, 1, 1), 3)}, ["y", "c"], None, r"^c is a graph output$"),
    "non-constant operand": (
        [node("Mul", ["c", "s"], "y")], {}, ["y"], {**X, "s": ((6, 1, 1), F32)}, r"operand s is not a constant"),
    "swish Mul is no candidate": (
        [node("Sigmoid", ["c"], "g"), node("Mul", ["c", "g"], "y")], {}, ["y"], None, r"^Mul Mul_y operand g is not a constant$"),
    "spatially varying": (
        [node("Mul", ["c", "s"], "y")], {"s": rand((6, 5, 1), 3)}, ["y"], None, r"shape \(6, 5, 1\) varies along spatial axis 2"),
    "[C] on NCHW broadcasts over W": (
        [node("Add", ["c", "s"], "y")], {"s": rand((5,), 3)}, ["y"], None,
        r"shape \(5,\) varies along spatial axis 3 .*not channels"),
    "batch varying": (
        [node("Mul", ["c", "s"], "y")], {"s": rand((2, 6, 1, 1), 3)}, ["y"], {"x": ((2, 4, 5, 5), F32)},
        r"varies along the batch axis"),
    "rank raising": (
        [node("Mul", ["c", "s"], "y")], {"s": rand((1, 1, 6, 1, 1), 3)}, ["y"], None, r"raises the rank-4 Conv output's rank"),
    "non-constant weights": (
        [node("Mul", ["c", "s"], "y")], {"s": rand((6, 1, 1), 3)}, ["y"], {**X, "w": ((6, 4, 3, 3), F32)},
        r"^Conv Conv_c weights are not constants$"),
    "zero-size constant": (
        [node("Mul", ["c", "s"], "y")], {"s": np.zeros((0, 1, 1, 1), np.float32)}, ["y"], None, r"constant is empty"),
}


@pytest.mark.parametrize("case", list(NOT_FOLDED))
def test_must_not_fold(case: str) -> None:
    tail, inits, outputs, inputs, reason = NOT_FOLDED[case]
    model = conv_model(tail, inits, outputs, inputs=inputs)
    out, result = apply(model, FoldConvAffine())
    assert result.changed == 0 and ops(out) == ops(model)
    assert len(result.skipped) == 1 and re.search(reason, result.skipped[0].reason), result.skipped


def test_conv1d_with_channel_column_folds() -> None:
    inits = {"w": rand((6, 4, 3), 11), "s": rand((6, 1), 12), "a": rand((1, 6, 1), 13)}
    nodes = [node("Conv", ["x", "w"], "c", pads=[1, 1]), node("Mul", ["c", "s"], "m"), node("Add", ["m", "a"], "y")]
    folds_exactly_once(make_model(nodes, {"x": ((2, 4, 7), F32)}, ["y"], inits), ["Conv"])


def test_float16_keeps_its_dtype() -> None:
    inits = {"w": rand((6, 4, 1, 1), 14, np.float16), "s": rand((6, 1, 1), 15, np.float16)}
    model = make_model([node("Conv", ["x", "w"], "c"), node("Mul", ["c", "s"], "y")], {"x": ((1, 4, 3, 3), TensorProto.FLOAT16)}, ["y"], inits)
    out, result = apply(model, FoldConvAffine())
    assert result.changed == 1 and ops(out) == ["Conv"]
    assert {i.data_type for i in out.graph.initializer} == {TensorProto.FLOAT16}
    assert rel_err(model, out) <= 2e-3


def test_manager_gate_accepts_the_fold() -> None:
    inits = {"s": rand((6, 1, 1), 3), "a": rand((1, 6, 1, 1), 4)}
    model = conv_model([node("Add", ["c", "a"], "p"), node("Mul", ["p", "s"], "y")], inits, ["y"])
    out, report = run_passes(model, [FoldConvAffine()], verify=True)
    assert report.rejected == [] and op_histogram(out) == {"Conv": 1}
    assert [(r.name, r.changed) for r in report.records if r.changed] == [("fold-conv-affine", 1)]
