"""fold-constants: constant subgraphs fold, also inside If/Loop bodies at IR 10 and 14, and an If on a
constant condition becomes its branch."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

from onnxmend.core.graph import op_histogram
from onnxmend.passes.cleanup.eliminate_dead_nodes import EliminateDeadNodes
from onnxmend.passes.cleanup.fold_constants import FoldConstants
from tests.builders import apply, assert_same, make_model, ops, run_passes, value
from tests.builders.peers import if_and_loop


def test_fold_constants_folds_a_constant_subgraph():
    nodes = [
        helper.make_node("Constant", [], ["c"], value=onnx.numpy_helper.from_array(np.full((2,), 2.0, np.float32))),
        helper.make_node("Mul", ["c", "c"], ["c4"]),
        helper.make_node("Add", ["x", "c4"], ["y"]),
    ]
    model = make_model(nodes, [value("x", [2])], [value("y", [2])])
    fixed, report = run_passes(model, [FoldConstants(), EliminateDeadNodes()])
    assert op_histogram(fixed) == {"Add": 1}
    assert report.records[0].changed == 2


def _subgraph_ops(model: onnx.ModelProto) -> dict[str, list[str]]:
    return {a.g.name: sorted(n.op_type for n in a.g.node) for n in model.graph.node for a in n.attribute
            if a.type == onnx.AttributeProto.GRAPH}


@pytest.mark.parametrize("ir_version", [10, 14])
def test_fold_constants_folds_inside_if_and_loop_bodies_at_any_ir_version(ir_version):
    """onnxruntime 1.31 loads IR <= 13; graphsurgeon would write its partitions at onnx's newest (14)."""
    model = if_and_loop(ir_version)
    out, result = apply(model, FoldConstants())
    assert result.changed == 6 and not result.skipped  # each body's Constant and Mul become one initializer
    assert ops(out) == ["Greater", "If", "Loop", "ReduceSum"]
    assert _subgraph_ops(out) == {"then": ["Add"], "else": ["Add"], "body": ["Add", "Identity"]}
    assert out.ir_version == ir_version
    if ir_version == 10:
        for seed in (0, 2):  # x sums to 3.5 and to -4.4: both branches run
            assert_same(model, out, seed=seed)
    assert apply(out, FoldConstants())[1].changed == 0


def test_fold_constants_replaces_an_if_on_a_constant_condition_by_its_branch():
    model = if_and_loop(10)
    model.graph.initializer.append(onnx.numpy_helper.from_array(np.asarray(True), "always"))
    model.graph.node[2].input[0] = "always"
    out, _ = apply(model, FoldConstants())
    assert ops(out) == ["Add", "Loop"]
    assert_same(model, out)
