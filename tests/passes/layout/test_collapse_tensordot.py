"""push-transposes and io-layout: one test per handler, broadcasting, sharing, boundaries, idempotence."""

from __future__ import annotations

import numpy as np
from onnx import helper

from onnxmend.passes.layout.collapse_tensordot import CollapseTensordot
from tests.builders import apply, assert_same, init, make_model, op_counts, run, transpose, value
from tests.builders.layout import TO_NHWC, X, pushed

RNG = np.random.default_rng(7)


def tensordot(target):
    w = RNG.standard_normal([3, 6]).astype(np.float32)
    nodes = [transpose("x", "y", TO_NHWC), helper.make_node("Reshape", ["y", "flat"], ["f"]),
             helper.make_node("MatMul", ["f", "w"], ["m"]), helper.make_node("Reshape", ["m", "back"], ["z"])]
    inits = [init("w", w), init("flat", np.int64([40, 3])), init("back", np.int64(target))]
    return make_model(nodes, [value("x", X)], [value("z", target)], inits)


def test_collapse_tensordot_then_push_turns_it_into_a_conv():
    m = tensordot([2, 4, 5, 6])
    collapsed, result = apply(m, CollapseTensordot())
    assert result.changed == 1 and op_counts(collapsed) == {"Transpose": 1, "MatMul": 1}
    assert_same(m, collapsed)
    assert apply(collapsed, CollapseTensordot())[1].changed == 0
    out, _ = pushed(collapsed, exact=False, transposes=1)
    assert [n.op_type for n in out.graph.node] == ["Conv", "Transpose"]


def test_collapse_tensordot_leaves_reshapes_that_regroup_axes():
    out, result = apply(tensordot([8, 5, 6]), CollapseTensordot())
    assert result.changed == 0 and op_counts(out)["Reshape"] == 2
    assert any("do more than flatten" in s.reason for s in result.skipped)


def dynamic_tensordot(back_dims=(0, 1, 2)):
    """tf2onnx's Tensordot with a dynamic batch: both Reshape targets computed from Shape(y)."""
    w = RNG.standard_normal([3, 6]).astype(np.float32)
    nodes = [transpose("x", "y", TO_NHWC), helper.make_node("Shape", ["y"], ["s"]),
             helper.make_node("Gather", ["s", "free"], ["lead"], axis=0),
             helper.make_node("ReduceProd", ["lead"], ["p"], axes=[0], keepdims=0),
             helper.make_node("Unsqueeze", ["p", "zero"], ["p1"]),
             helper.make_node("Concat", ["p1", "c"], ["flat"], axis=0),
             helper.make_node("Reshape", ["y", "flat"], ["f"]), helper.make_node("MatMul", ["f", "w"], ["m"]),
             helper.make_node("Gather", ["s", "keep"], ["kept"], axis=0),
             helper.make_node("Concat", ["kept", "k"], ["back"], axis=0), helper.make_node("Reshape", ["m", "back"], ["z"])]
    inits = [init("w", w), init("free", np.int64([0, 1, 2])), init("keep", np.int64(list(back_dims))),
             init("zero", np.int64([0])), init("c", np.int64([3])), init("k", np.int64([6]))]
    out = ["N", 4, 5, 6] if list(back_dims) == [0, 1, 2] else ["N", 5, 4, 6]
    return make_model(nodes, [value("x", ["N", 3, 4, 5])], [value("z", out)], inits, opset=13)


def test_collapse_tensordot_reads_shape_chains_of_a_dynamic_batch():
    m = dynamic_tensordot()
    collapsed, result = apply(m, CollapseTensordot())
    assert result.changed == 1 and op_counts(collapsed) == {"Transpose": 1, "MatMul": 1}
    assert collapsed.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    for batch in (1, 3):
        feeds = {"x": RNG.standard_normal((batch, 3, 4, 5)).astype(np.float32)}
        np.testing.assert_allclose(run(m, feeds)[0], run(collapsed, feeds)[0], rtol=1e-6, atol=1e-6)
    assert apply(collapsed, CollapseTensordot())[1].changed == 0


def test_collapse_tensordot_leaves_a_dynamic_reshape_that_swaps_leading_axes():
    out, result = apply(dynamic_tensordot(back_dims=(0, 2, 1)), CollapseTensordot())
    assert result.changed == 0 and op_counts(out)["Reshape"] == 2
    (skip,) = result.skipped
    assert "do more than flatten and restore the leading axes" in skip.reason


def literal_dynamic_tensordot(flat, back, out=("N", 4, 5, 6)):
    """The dynamic-batch Tensordot after fold-shape-chains: literal targets with -1 and 0 for the batch."""
    w = RNG.standard_normal([3, 6]).astype(np.float32)
    nodes = [transpose("x", "y", TO_NHWC), helper.make_node("Reshape", ["y", "flat"], ["f"]),
             helper.make_node("MatMul", ["f", "w"], ["m"]), helper.make_node("Reshape", ["m", "back"], ["z"])]
    inits = [init("w", w), init("flat", np.int64(flat)), init("back", np.int64(back))]
    return make_model(nodes, [value("x", ["N", 3, 4, 5])], [value("z", list(out))], inits, opset=13)


def test_collapse_tensordot_reads_literal_targets_with_minus_one_for_a_dynamic_batch():
    m = literal_dynamic_tensordot([-1, 3], [-1, 4, 5, 6])
    collapsed, result = apply(m, CollapseTensordot())
    assert result.changed == 1 and op_counts(collapsed) == {"Transpose": 1, "MatMul": 1}
    for batch in (1, 3):
        feeds = {"x": RNG.standard_normal((batch, 3, 4, 5)).astype(np.float32)}
        np.testing.assert_allclose(run(m, feeds)[0], run(collapsed, feeds)[0], rtol=1e-6, atol=1e-6)


def test_collapse_tensordot_leaves_a_literal_zero_that_copies_the_flattened_dim():
    # [0, 4, 5, 6] on the flattened [N*20, 6] copies N*20, not N; a -1 that does not divide is unreadable
    for back, why in (([0, 4, 5, 6], "do more than flatten"), ([-1, 7, 5, 6], "cannot read")):
        out, result = apply(literal_dynamic_tensordot([-1, 3], back, ("a", "b", 5, 6)), CollapseTensordot())
        assert result.changed == 0 and op_counts(out)["Reshape"] == 2
        assert why in result.skipped[0].reason, back
