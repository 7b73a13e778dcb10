"""fold-pad: zero Pads into Conv/MaxPool/AveragePool (also across a layout Transpose), merges, must-not-fire reasons, and inspect counting with fold-pad's own matcher."""

from __future__ import annotations

import math
import re

import pytest
from onnx import TensorProto, helper

from onnxmend.core.graph import op_histogram
from onnxmend.passes.padding.fold_pad import FoldPad
from onnxmend.passes.padding.split_asymmetric_pads import SplitAsymmetricPads
from onnxmend.runtime.inspect import inspect_model
from tests.builders import candidates
from tests.builders.padding import (
    assert_exact_and_idempotent,
    assert_skipped,
    attr,
    changed,
    find_node,
    ints,
    pipeline,
    scalar,
    weight,
    x_model,
)


def pad_conv_model(pads, opset=17, value=None, mode="constant", x_shape=(1, 3, 8, 8), op="Conv", pool_attrs=None,
                   pre=None, axes=None):
    pre_nodes = [helper.make_node(pre, ["x"], ["x_act"])] if pre else []
    data = "x_act" if pre else "x"
    pad_inputs = [data, "pads", "value" if value is not None else ""] + (["axes"] if axes is not None else [])
    inits = [ints("pads", pads)] + ([scalar("value", value)] if value is not None else [])
    inits += [ints("axes", axes)] if axes is not None else []
    pad = helper.make_node("Pad", pad_inputs, ["p"], mode=mode)
    if op == "Conv":
        consumer = helper.make_node("Conv", ["p", "w"], ["y"], kernel_shape=[3, 3])
        inits.append(weight("w", [4, x_shape[1], 3, 3]))
    else:
        consumer = helper.make_node(op, ["p"], ["y"], **(pool_attrs if pool_attrs is not None else {"kernel_shape": [3, 3]}))
    return x_model(pre_nodes + [pad, consumer], list(x_shape), inits, opset)


@pytest.mark.parametrize("opset", [17, 18])
def test_fold_pad_into_conv(opset):
    model = pad_conv_model([0, 0, 1, 0, 0, 0, 1, 1], opset=opset)
    out, report = pipeline(model, FoldPad())
    assert op_histogram(out) == {"Conv": 1}
    assert list(attr(find_node(out, "Conv"), "pads")) == [1, 0, 1, 1]
    assert changed(report) == 1
    assert_exact_and_idempotent(model, out, [1, 3, 8, 8], FoldPad())


def test_fold_pad_with_axes_input_opset18():
    model = pad_conv_model([1, 0, 1, 1], opset=18, axes=[2, 3])
    out, _ = pipeline(model, FoldPad())
    assert op_histogram(out) == {"Conv": 1}
    assert list(attr(find_node(out, "Conv"), "pads")) == [1, 0, 1, 1]
    assert_exact_and_idempotent(model, out, [1, 3, 8, 8], FoldPad())


def test_fold_pad_through_layout_transpose():
    shape = [1, 8, 8, 3]  # NHWC
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"]),
        helper.make_node("Transpose", ["p"], ["t"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["t", "w"], ["y"], kernel_shape=[3, 3], strides=[2, 2]),
    ]
    # NHWC pads: H gets (0, 1), W gets (1, 1)
    model = x_model(nodes, shape, [ints("pads", [0, 0, 1, 0, 0, 1, 1, 0]), weight("w", [4, 3, 3, 3])])
    out, _ = pipeline(model, FoldPad())
    assert op_histogram(out) == {"Transpose": 1, "Conv": 1}
    assert list(attr(find_node(out, "Conv"), "pads")) == [0, 1, 1, 1]
    assert_exact_and_idempotent(model, out, shape, FoldPad())


def test_fold_pad_reads_constant_node_and_constant_subgraph():
    shape = [1, 3, 8, 8]
    nodes = [
        helper.make_node("Constant", [], ["head"], value=ints("head_v", [0, 0, 1, 1])),
        helper.make_node("Concat", ["head", "tail"], ["pads_i"], axis=0),
        helper.make_node("Cast", ["pads_i"], ["pads"], to=TensorProto.INT64),
        helper.make_node("Pad", ["x", "pads"], ["p"]),
        helper.make_node("Conv", ["p", "w"], ["y"], kernel_shape=[3, 3]),
    ]
    model = x_model(nodes, shape, [ints("tail", [0, 0, 1, 1]), weight("w", [4, 3, 3, 3])])
    out, _ = pipeline(model, FoldPad())
    assert op_histogram(out) == {"Conv": 1}
    assert list(attr(find_node(out, "Conv"), "pads")) == [1, 1, 1, 1]
    assert_exact_and_idempotent(model, out, shape, FoldPad())


def test_fold_pad_merges_consecutive_pads_then_folds():
    shape = [1, 3, 8, 8]
    nodes = [
        helper.make_node("Pad", ["x", "p1"], ["a"]),
        helper.make_node("Pad", ["a", "p2"], ["b"]),
        helper.make_node("Conv", ["b", "w"], ["y"], kernel_shape=[3, 3]),
    ]
    inits = [ints("p1", [0, 0, 1, 0, 0, 0, 0, 1]), ints("p2", [0, 0, 0, 1, 0, 0, 1, 0]), weight("w", [4, 3, 3, 3])]
    model = x_model(nodes, shape, inits)
    out, report = pipeline(model, FoldPad())
    assert op_histogram(out) == {"Conv": 1}
    assert list(attr(find_node(out, "Conv"), "pads")) == [1, 1, 1, 1]
    assert changed(report) == 2
    assert_exact_and_idempotent(model, out, shape, FoldPad())

    two_pads = x_model(nodes[:2] + [helper.make_node("Relu", ["b"], ["y"])], shape, inits[:2])
    merged, _ = pipeline(two_pads, FoldPad())
    assert op_histogram(merged) == {"Pad": 1, "Relu": 1}
    assert_exact_and_idempotent(two_pads, merged, shape, FoldPad())


@pytest.mark.parametrize("pre", ["Relu", "Sigmoid", "Abs", "Softplus"])
def test_fold_pad_into_maxpool_after_non_negative_op_and_with_neg_inf(pre):
    model = pad_conv_model([0, 0, 1, 1, 0, 0, 1, 1], op="MaxPool", pre=pre)
    out, _ = pipeline(model, FoldPad())
    assert op_histogram(out) == {pre: 1, "MaxPool": 1}
    assert_exact_and_idempotent(model, out, [1, 3, 8, 8], FoldPad())

    any_sign = pad_conv_model([0, 0, 0, 0, 0, 0, 1, 1], op="MaxPool", value=-math.inf)
    out, _ = pipeline(any_sign, FoldPad())
    assert op_histogram(out) == {"MaxPool": 1}
    assert_exact_and_idempotent(any_sign, out, [1, 3, 8, 8], FoldPad())


def test_fold_pad_into_average_pool_sets_count_include_pad():
    model = pad_conv_model([0, 0, 1, 1, 0, 0, 1, 1], op="AveragePool", pool_attrs={"kernel_shape": [3, 3]})
    out, _ = pipeline(model, FoldPad())
    pool = find_node(out, "AveragePool")
    assert op_histogram(out) == {"AveragePool": 1}
    assert attr(pool, "count_include_pad") == 1 and list(attr(pool, "pads")) == [1, 1, 1, 1]
    assert_exact_and_idempotent(model, out, [1, 3, 8, 8], FoldPad())


def test_fold_pad_removes_all_zero_pad():
    model = pad_conv_model([0] * 8, op="Relu", pool_attrs={})
    out, _ = pipeline(model, FoldPad())
    assert op_histogram(out) == {"Relu": 1}
    assert_exact_and_idempotent(model, out, [1, 3, 8, 8], FoldPad())


@pytest.mark.parametrize("kwargs,pattern", [
    (dict(pads=[0, 0, 1, 1, 0, 0, 1, 1], mode="reflect"), r"mode 'reflect' is not constant"),
    (dict(pads=[0, 0, 1, 1, 0, 0, 1, 1], mode="edge"), r"mode 'edge' is not constant"),
    (dict(pads=[0, 0, 1, 1, 0, 0, 1, 1], value=1.0), r"value 1 is not zero"),
    (dict(pads=[0, 0, -1, 0, 0, 0, 1, 1]), r"negative pads crop"),
    (dict(pads=[0, 1, 1, 1, 0, 0, 1, 1]), r"batch/channel axes"),
    (dict(pads=[0, 0, 1, 1, 0, 0, 1, 1], op="ConvTranspose"), r"ConvTranspose pads crop its output"),
    (dict(pads=[0, 0, 1, 1, 0, 0, 1, 1], op="MaxPool"), r"MaxPool input may be negative"),
    (dict(pads=[0, 0, 1, 1, 0, 0, 1, 1], op="MaxPool", pre="Relu",
          pool_attrs={"kernel_shape": [3, 3], "ceil_mode": 1}), r"ceil_mode=1"),
    (dict(pads=[0, 0, 2, 2, 0, 0, 2, 2], op="MaxPool", pre="Relu",
          pool_attrs={"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}), r"reach the kernel size"),
    (dict(pads=[0, 0, 1, 1, 0, 0, 1, 1], op="AveragePool",
          pool_attrs={"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}), r"count_include_pad=0"),
    (dict(pads=[0, 0, 1, 1, 0, 0, 1, 1], op="AveragePool",
          pool_attrs={"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER"}), r"resolve-auto-pad runs first"),
    (dict(pads=[0, 0, 1, 1, 0, 0, 1, 1], op="Relu", pool_attrs={}), r"consumer Relu cannot absorb"),
])
def test_fold_pad_must_not_fire(kwargs, pattern):
    if kwargs.get("op") == "ConvTranspose":
        model = pad_conv_model(kwargs["pads"])
        conv = find_node(model, "Conv")
        conv.op_type = "ConvTranspose"
        model.graph.initializer[-1].CopyFrom(weight("w", [3, 4, 3, 3]))
    else:
        model = pad_conv_model(**kwargs)
    out, report = pipeline(model, FoldPad())
    assert changed(report) == 0
    assert op_histogram(out).get("Pad") == 1
    assert_skipped(report, "fold-pad", pattern)


def test_fold_pad_must_not_fire_on_shared_or_output_pads():
    shape = [1, 3, 8, 8]
    shared = [
        helper.make_node("Pad", ["x", "pads"], ["p"]),
        helper.make_node("Conv", ["p", "w"], ["c"], kernel_shape=[3, 3]),
        helper.make_node("ReduceSum", ["p"], ["s"], keepdims=0),
        helper.make_node("Add", ["c", "s"], ["y"]),
    ]
    inits = [ints("pads", [0, 0, 1, 1, 0, 0, 1, 1]), weight("w", [4, 3, 3, 3])]
    _, report = pipeline(x_model(shared, shape, inits), FoldPad())
    assert_skipped(report, "fold-pad", r"Pad output has 2 consumers")

    as_output = [helper.make_node("Pad", ["x", "pads"], ["y"])]
    _, report = pipeline(x_model(as_output, shape, inits[:1]), FoldPad())
    assert_skipped(report, "fold-pad", r"Pad output is a graph output")

    runtime_pads = [helper.make_node("Pad", ["x", "pads_in"], ["p"]),
                    helper.make_node("Conv", ["p", "w"], ["y"], kernel_shape=[3, 3])]
    pads_input = helper.make_tensor_value_info("pads_in", TensorProto.INT64, [8])
    _, report = pipeline(x_model(runtime_pads, shape, inits[1:], extra_inputs=[pads_input]), FoldPad())
    assert_skipped(report, "fold-pad", r"depend on the graph input 'pads_in'")


def test_fold_pad_portable_keeps_asymmetric_and_folds_symmetric():
    asym = pad_conv_model([0, 0, 0, 0, 0, 0, 1, 1])
    _, report = pipeline(asym, FoldPad(), SplitAsymmetricPads(), preset="portable")
    assert changed(report) == 0
    assert_skipped(report, "fold-pad", r"asymmetric, which the portable preset avoids")

    sym = pad_conv_model([0, 0, 1, 1, 0, 0, 1, 1])
    out, _ = pipeline(sym, FoldPad(), SplitAsymmetricPads(), preset="portable")
    assert op_histogram(out) == {"Conv": 1}


def test_inspect_counts_what_the_padding_passes_match():
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"]),
        helper.make_node("Conv", ["p", "w"], ["c"], kernel_shape=[3, 3], pads=[0, 0, 1, 1]),
        helper.make_node("MaxPool", ["c"], ["y"], kernel_shape=[2, 2], auto_pad="SAME_UPPER"),
    ]
    model = x_model(nodes, [1, 3, 8, 8], [ints("pads", [0, 0, 1, 1, 0, 0, 1, 1]), weight("w", [4, 3, 3, 3])])
    found = {c.name: c.count for c in inspect_model(model, preset="fix").candidates}
    assert found["fold-pad"] == 1 and found["resolve-auto-pad"] == 1 and found["fold-dynamic-pad"] == 0
    assert {f.key: f.count for f in inspect_model(model).findings}["asymmetric_pads"] == 1


def test_inspect_does_not_count_a_reflect_pad_that_fold_pad_refuses():
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"], mode="reflect"),
        helper.make_node("Conv", ["p", "w"], ["y"], kernel_shape=[3, 3]),
    ]
    model = x_model(nodes, [1, 3, 8, 8], [ints("pads", [0, 0, 1, 1, 0, 0, 1, 1]), weight("w", [4, 3, 3, 3])])
    found = candidates(model, FoldPad())
    assert found.count == 0 and re.search(r"mode 'reflect' is not constant", found.skipped[0].reason)
    _, report = pipeline(model, FoldPad())
    assert changed(report) == 0


@pytest.mark.parametrize("low,folds", [(0.0, True), (-1.0, False)])
def test_fold_pad_into_maxpool_after_clip_depends_on_min(low, folds):
    nodes = [
        helper.make_node("Clip", ["x", "low", "high"], ["c"]),
        helper.make_node("Pad", ["c", "pads"], ["p"]),
        helper.make_node("MaxPool", ["p"], ["y"], kernel_shape=[3, 3]),
    ]
    inits = [scalar("low", low), scalar("high", 6.0), ints("pads", [0, 0, 1, 1, 0, 0, 1, 1])]
    model = x_model(nodes, [1, 3, 8, 8], inits)
    out, report = pipeline(model, FoldPad())
    assert op_histogram(out).get("Pad", 0) == (0 if folds else 1)
    if folds:
        assert_exact_and_idempotent(model, out, [1, 3, 8, 8], FoldPad())
    else:
        assert_skipped(report, "fold-pad", r"MaxPool input may be negative")


def _shared_pad_model(second: str, pads=(0, 0, 1, 1, 0, 0, 1, 1), mode="constant"):
    """x ─ Pad ─┬─ Conv a ─┐
                └─ second ─Add─ y"""
    second_node = (helper.make_node("Conv", ["p", "w2"], ["b"], kernel_shape=[5, 5], strides=[2, 2], pads=[0, 0, 1, 1])
                   if second == "Conv" else helper.make_node(second, ["p"], ["b"], kernel_shape=[3, 3], strides=[2, 2])
                   if second in ("MaxPool", "AveragePool") else helper.make_node(second, ["p"], ["b"]))
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"], mode=mode),
        helper.make_node("Conv", ["p", "w"], ["a"], kernel_shape=[3, 3], strides=[2, 2]),
        second_node,
        helper.make_node("Add", ["a", "b"], ["y"]),
    ]
    inits = [ints("pads", list(pads)), weight("w", [3, 3, 3, 3]), weight("w2", [3, 3, 5, 5], seed=2)]
    return x_model(nodes, [1, 3, 8, 8], inits)


def test_fold_pad_folds_a_shared_pad_into_every_conv():
    model = _shared_pad_model("Conv")
    out, report = pipeline(model, FoldPad())
    assert op_histogram(out) == {"Conv": 2, "Add": 1}
    assert changed(report) == 1
    assert sorted(list(attr(n, "pads")) for n in out.graph.node if n.op_type == "Conv") == [[1, 1, 1, 1], [1, 1, 2, 2]]  # the second Conv keeps its own
    assert_exact_and_idempotent(model, out, [1, 3, 8, 8], FoldPad())


def test_fold_pad_leaves_a_shared_pad_whole_when_one_reader_cannot_absorb_it():
    _, report = pipeline(_shared_pad_model("MaxPool"), FoldPad())  # x may be negative: no zero padding into MaxPool
    assert changed(report) == 0
    assert_skipped(report, "fold-pad", r"2 consumers and MaxPool \S+ cannot absorb it: the MaxPool input may be negative")


@pytest.mark.parametrize("mode", ["constant", "reflect"])
def test_fold_pad_removes_a_shared_all_zero_pad_in_any_mode(mode):
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"], mode=mode),
        helper.make_node("Relu", ["p"], ["a"]),
        helper.make_node("Sigmoid", ["p"], ["b"]),
        helper.make_node("Add", ["a", "b"], ["y"]),
    ]
    model = x_model(nodes, [1, 3, 8, 8], [ints("pads", [0] * 8)])
    out, report = pipeline(model, FoldPad())
    assert op_histogram(out) == {"Relu": 1, "Sigmoid": 1, "Add": 1}
    assert changed(report) == 1
    assert_exact_and_idempotent(model, out, [1, 3, 8, 8], FoldPad())


def test_fold_pad_removes_an_all_zero_pad_that_is_the_graph_output():
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Pad", ["r", "pads"], ["y"])]
    model = x_model(nodes, [1, 3, 8, 8], [ints("pads", [0] * 8)])
    out, _ = pipeline(model, FoldPad())
    assert op_histogram(out) == {"Relu": 1} and out.graph.output[0].name == "y"
    assert_exact_and_idempotent(model, out, [1, 3, 8, 8], FoldPad())

    passthrough = x_model([helper.make_node("Pad", ["x", "pads"], ["y"])], [1, 3, 8, 8], [ints("pads", [0] * 8)])
    out, report = pipeline(passthrough, FoldPad())
    assert op_histogram(out) == {"Pad": 1}
    assert_skipped(report, "fold-pad", r"all-zero Pad links a graph input or constant to a graph output")
