"""eliminate-dead-nodes: nodes and initializers no output depends on go; graph inputs stay, used or not."""

from __future__ import annotations

import numpy as np
from onnx import helper

from onnxmend.passes.cleanup.eliminate_dead_nodes import EliminateDeadNodes
from tests.builders import apply, assert_same, init, make_model, ops, value


def _with_dead_branch():
    nodes = [
        helper.make_node("Relu", ["x"], ["y"]),
        helper.make_node("Mul", ["x", "w"], ["unused"]),          # reads a graph input, feeds nothing
        helper.make_node("Cast", ["c"], ["dead_cast"], to=7),       # a dead chain on a dead constant
    ]
    inputs = [value("x", [2, 3]), value("spare", [4])]
    return make_model(nodes, inputs, [value("y", [2, 3])], [init("w", np.ones((2, 3), np.float32)),
                                                            init("c", np.ones(3, np.float32))])


def test_dead_nodes_and_their_initializers_go_exactly():
    model = _with_dead_branch()
    out, result = apply(model, EliminateDeadNodes())
    assert ops(out) == ["Relu"]
    assert [t.name for t in out.graph.initializer] == []
    assert result.changed == 4  # Mul, Cast, and the initializers w and c
    assert_same(model, out)


def test_graph_inputs_stay_even_when_unused():
    out, _ = apply(_with_dead_branch(), EliminateDeadNodes())
    assert [i.name for i in out.graph.input] == ["x", "spare"]


def test_a_live_graph_is_left_alone_and_the_pass_is_idempotent():
    out, _ = apply(_with_dead_branch(), EliminateDeadNodes())
    again, result = apply(out, EliminateDeadNodes())
    assert result.changed == 0 and ops(again) == ops(out)
