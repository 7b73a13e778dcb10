"""push-transposes and io-layout: one test per handler, broadcasting, sharing, boundaries, idempotence."""

from __future__ import annotations

import numpy as np
from onnx import helper

from onnxmend.passes.layout.collapse_tensordot import CollapseTensordot
from tests.builders import apply, assert_same, init, make_model, op_counts, transpose, value
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
