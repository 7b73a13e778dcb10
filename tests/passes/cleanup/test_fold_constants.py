"""fold-constants: constant subgraphs fold, also inside If/Loop bodies at IR 10 and 14, and an If on a
constant condition becomes its branch; evaluation in the graph worker, never a memory bomb in process."""

from __future__ import annotations

import re

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from onnx import helper

from onnxmend.core.graph import op_histogram
from onnxmend.passes.cleanup.eliminate_dead_nodes import EliminateDeadNodes
from onnxmend.passes.cleanup.fold_constants import FoldConstants, fold_serialised
from onnxmend.passes.infra.base import PassContext
from tests.builders import apply, assert_same, make_model, node, ops, run, run_passes, value
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


def test_a_fold_that_fails_in_process_past_2_gib_is_a_skip_with_its_reason(monkeypatch):
    """Past 2 GiB the graph folds in this process: an onnxruntime error there skips the pass (as from the
    worker) instead of raising out of it."""
    from onnxmend.passes.cleanup import fold_constants

    def broken(data, model=None):
        raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : kernel failed")

    monkeypatch.setattr(fold_constants, "is_large", lambda model: True)
    monkeypatch.setattr(fold_constants, "fold_serialised", broken)
    nodes = [helper.make_node("Mul", ["c", "c"], ["c4"]), helper.make_node("Add", ["x", "c4"], ["y"])]
    model = make_model(nodes, [value("x", [2])], [value("y", [2])], {"c": np.full((2,), 2.0, np.float32)})
    out, result = apply(model, FoldConstants())
    assert result.changed == 0 and sorted(ops(out)) == ["Add", "Mul"]
    (skip,) = result.skipped
    assert skip.reason.startswith("constant folding failed: RuntimeError: [ONNXRuntimeError]")


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


def _step_model() -> onnx.ModelProto:
    """y = x * step + start, (start, step) from an If on a constant condition whose branch divides by a
    dim of x (ONNX's expanded AffineGrid in small)."""
    f32 = onnx.TensorProto.FLOAT
    scalar = lambda name: helper.make_tensor_value_info(name, f32, [])  # noqa: E731
    then = helper.make_graph([node("Div", ["two", "d_float"], "step_then"), node("Div", ["step_then", "two"], "half"),
                              node("Add", ["minus_one", "half"], "start_then")], "then", [],
                             [scalar("start_then"), scalar("step_then")])
    other = helper.make_graph([node("Identity", ["zero"], "start_else"), node("Identity", ["zero"], "step_else")],
                              "else", [], [scalar("start_else"), scalar("step_else")])
    nodes = [node("Shape", ["x"], "s"), node("Gather", ["s", "axis2"], "d", axis=0), node("Cast", ["d"], "d_float", to=f32),
             node("Equal", ["i0", "i0"], "cond"),
             helper.make_node("If", ["cond"], ["start", "step"], then_branch=then, else_branch=other),
             node("Mul", ["x", "step"], "m"), node("Add", ["m", "start"], "y")]
    inits = {"two": np.float32(2), "minus_one": np.float32(-1), "zero": np.float32(0), "axis2": np.int64(2),
             "i0": np.int64(0)}
    return make_model(nodes, [value("x", [1, 1, 4, 5])], ["y"], {k: np.asarray(v) for k, v in inits.items()})


def test_an_if_that_graphsurgeon_flattens_into_a_broken_graph_is_folded_with_the_if_kept():
    """graphsurgeon flattening this If left the Mul reading the If's old output (the checker refused the
    graph and the manager rolled the pass back): the worker folds it again without flattening."""
    model = _step_model()
    folded = onnx.load_from_string(fold_serialised(model.SerializeToString()))
    onnx.checker.check_model(folded, full_check=True)
    assert [n.op_type for n in folded.graph.node] == ["Shape", "Gather", "Cast", "If", "Mul", "Add"]
    out, _ = apply(model, FoldConstants())  # with the shape read folded first, the whole If folds
    assert sorted(ops(out)) == ["Add", "Mul"]
    assert_same(model, out)


def _shape_model(nodes, x_shape, out: str, opset: int = 18):
    return make_model(nodes, [value("x", x_shape)], [helper.make_tensor_value_info(out, onnx.TensorProto.INT64, None)],
                      opset=opset)


def _folded(model):
    fixed, report = run_passes(model, [FoldConstants()], verify=False)
    values = {t.name: onnx.numpy_helper.to_array(t) for t in fixed.graph.initializer}
    return fixed, report, values


@pytest.mark.parametrize("attrs, dims", [({"start": 1}, [3, 4]), ({"end": -1}, [2, 3]), ({"start": -1}, [4]),
                                         ({"start": 1, "end": 2}, [3]), ({"start": 2, "end": 1}, [])])
def test_shape_start_and_end_fold_to_the_dims_they_read(attrs, dims):
    # ONNX's backend tests shape_start_1, shape_end_1, ...: graphsurgeon folded them to the whole shape.
    model = _shape_model([helper.make_node("Shape", ["x"], ["y"], **attrs)], [2, 3, 4], "y")
    fixed, report, values = _folded(model)
    assert op_histogram(fixed) == {} and report.records[0].changed == 1
    assert values["y"].tolist() == dims and values["y"].dtype == np.int64
    x = np.zeros((2, 3, 4), np.float32)
    assert run(model, {"x": x})[0].tolist() == dims


@pytest.mark.parametrize("reader, picked", [
    (lambda: [helper.make_node("Gather", ["s", "i"], ["y"], axis=0)], 3),  # Shape(x, start=1)[0]
    (lambda: [helper.make_node("Gather", ["s", "i_last"], ["y"], axis=0)], 5),  # Shape(x, start=1)[-1]
    (lambda: [helper.make_node("Slice", ["s", "one", "big"], ["y"])], [8, 5]),  # Shape(x, start=1)[1:]
    (lambda: [helper.make_node("Slice", ["s", "minus_one", "zero", "zero", "minus_one"], ["y"])], [5, 8]),  # reversed, stops before 0
])
def test_reads_of_a_partial_shape_fold_where_their_dims_are_static(reader, picked):
    # The expanded attention and rotary-embedding bodies read dims as Shape(x, start=k) -> Gather/Slice;
    # graphsurgeon indexed x's whole shape, so a dynamic batch N read as 3 (and the graph broke).
    consts = {"i": 0, "i_last": -1, "one": [1], "big": [2**62], "minus_one": [-1], "zero": [0]}
    nodes = [helper.make_node("Constant", [], [k], value=onnx.numpy_helper.from_array(np.asarray(v, np.int64), k))
             for k, v in consts.items()]
    model = _shape_model([*nodes, helper.make_node("Shape", ["x"], ["s"], start=1), *reader()], ["N", 3, 8, 5], "y")
    fixed, _, values = _folded(model)
    assert "Shape" not in op_histogram(fixed) and values["y"].tolist() == picked
    assert run(model, {"x": np.zeros((2, 3, 8, 5), np.float32)})[0].tolist() == picked


def test_a_read_of_a_dynamic_dim_stays():
    nodes = [helper.make_node("Constant", [], ["i"], value=onnx.numpy_helper.from_array(np.asarray(0, np.int64), "i")),
             helper.make_node("Shape", ["x"], ["s"]), helper.make_node("Gather", ["s", "i"], ["y"], axis=0)]
    fixed, _, values = _folded(_shape_model(nodes, ["N", 3], "y"))
    assert op_histogram(fixed) == {"Shape": 1, "Gather": 1} and "y" not in values


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
