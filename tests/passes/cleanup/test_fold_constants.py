"""The pass manager: fixed point, gate, rollback, checker failures, interface metadata, op deltas."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from onnxmend.core.graph import op_histogram
from onnxmend.passes.cleanup.eliminate_dead_nodes import EliminateDeadNodes
from onnxmend.passes.cleanup.fold_constants import FoldConstants
from tests.builders import make_model, run_passes, value


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
