"""push-transposes and io-layout: one test per handler, broadcasting, sharing, boundaries, idempotence."""

from __future__ import annotations

import numpy as np
from onnx import helper

from onnxmend.passes.layout.findings import transpose_findings as inspect_layout
from tests.builders import init, make_model, transpose, value
from tests.builders.layout import TO_NCHW, TO_NHWC, X

RNG = np.random.default_rng(7)


def test_inspect_layout_counts_transposes_between_convs():
    w = init("w", np.ones([3, 3, 1, 1], np.float32))
    nodes = [helper.make_node("Conv", ["x", "w"], ["a"]), transpose("a", "b", TO_NHWC), helper.make_node("Relu", ["b"], ["c"]),
             transpose("c", "d", TO_NCHW), helper.make_node("Conv", ["d", "w"], ["y"])]
    info = inspect_layout(make_model(nodes, [value("x", X)], [value("y", X)], [w]))
    assert info["transposes"] == 2 and info["between_layout_sensitive"] == 2


def test_a_transpose_without_outputs_or_inputs_is_counted_not_a_crash():
    # A mutated file had its nodes' outputs removed: the at_inputs/at_outputs counts indexed [0] (IndexError).
    nodes = [helper.make_node("Transpose", ["x"], [], perm=[0, 2, 3, 1]), helper.make_node("Transpose", [], ["t"]),
             helper.make_node("Relu", ["x"], ["y"])]
    graph = helper.make_graph(nodes, "g", [value("x", X)], [value("y", X)])
    info = inspect_layout(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]))
    assert info["transposes"] == 2 and info["at_inputs"] == 1 and info["at_outputs"] == 0
    assert info["perms"] == ["[0, 2, 3, 1]", "[]"]
