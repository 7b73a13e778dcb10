"""fold-constants: constant subgraphs folded; evaluation in the graph worker, never a memory bomb in process."""

from __future__ import annotations

import re

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from onnx import helper

from onnxmend.core.graph import op_histogram
from onnxmend.passes.cleanup.eliminate_dead_nodes import EliminateDeadNodes
from onnxmend.passes.cleanup.fold_constants import FoldConstants
from onnxmend.passes.infra.base import PassContext
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


def _const_of_shape(shape: list[int]) -> onnx.ModelProto:
    nodes = [helper.make_node("ConstantOfShape", ["s"], ["zeros"]), helper.make_node("Add", ["x", "zeros"], ["y"])]
    inits = [onnx.numpy_helper.from_array(np.asarray(shape, np.int64), "s")]
    return make_model(nodes, [value("x", [1, 1])], ["y"], inits, check=False)


def test_a_folded_constant_larger_than_the_model_stores_is_left_alone():
    # ConstantOfShape [1, 2^31 - 1] is 8 GiB of zeros: folding it used to allocate it in onnxmend's own
    # process (and get it killed for memory); now it is not evaluated at all.
    model = _const_of_shape([1, 2**31 - 1])
    fixed, report = run_passes(model, [FoldConstants()], verify=False)  # the gate would run the 8 GiB
    assert op_histogram(fixed) == {"ConstantOfShape": 1, "Add": 1}
    assert report.records == []


def test_folding_runs_in_the_graph_worker_and_its_failure_skips_the_pass(monkeypatch):
    from onnxmend.core.isolated import graph_worker
    from onnxmend.passes.cleanup import fold_constants

    graph_worker(0).close()  # a child that has yet to start cannot answer within a millisecond
    monkeypatch.setattr(fold_constants, "DEFAULT_TIMEOUT_S", 0.001)
    monkeypatch.setattr(fold_constants, "SECONDS_PER_NODE", 0.0)
    model = _const_of_shape([1, 4])
    graph = gs.import_onnx(model)
    result = FoldConstants().apply(graph, PassContext(opset=17))
    assert result.changed == 0
    assert re.match(r"constant folding failed: constant folding \(onnxruntime\) did not finish folding the graph's "
                    r"constants within 0\.001 s; it was stopped$", result.skipped[0].reason)
    assert [n.op for n in graph.nodes] == ["ConstantOfShape", "Add"]  # the graph is as it was


def test_a_graph_with_nothing_to_fold_is_answered_without_the_worker(monkeypatch):
    from onnxmend.passes.cleanup import fold_constants

    monkeypatch.setattr(fold_constants, "_fold_in_worker", lambda graph: pytest.fail("the worker was asked"))
    model = make_model([helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Add", ["r", "x"], ["y"])],
                       [value("x", [2])], [value("y", [2])])
    assert not fold_constants.has_foldable(gs.import_onnx(model))
    assert FoldConstants().apply(gs.import_onnx(model), PassContext(opset=17)).changed == 0
