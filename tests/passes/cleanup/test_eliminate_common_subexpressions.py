"""eliminate-common-subexpressions: duplicated branches and repeated Shape chains merge in one sweep;
graph outputs keep their producer; random ops, other attributes and two graph outputs are left alone."""

from __future__ import annotations

import re

import numpy as np
from onnx import TensorProto

from onnxmend.passes.cleanup.dedupe_initializers import DedupeInitializers
from onnxmend.passes.cleanup.eliminate_common_subexpressions import EliminateCommonSubexpressions
from tests.builders import apply, assert_same, candidates, make_model, node, ops, run_passes, value
from tests.builders.peers import duplicated_branches


def test_duplicated_branches_on_equal_constants_merge_after_dedupe():
    model = duplicated_branches()
    out, report = run_passes(model, [DedupeInitializers(), EliminateCommonSubexpressions()])
    assert not report.rejected and ops(out) == ["Concat", "Mul", "Mul", "Sigmoid"]
    assert {r.name: r.changed for r in report.records}["eliminate-common-subexpressions"] == 3
    assert_same(model, out)
    again, second = run_passes(out, [DedupeInitializers(), EliminateCommonSubexpressions()])
    assert second.records == [] and ops(again) == ops(out)


def test_a_repeated_shape_chain_is_read_once():
    """torch's legacy exporter: each view of h asks Shape(h)[0] again."""
    nodes, inits = [], {"zero": np.asarray(0, np.int64), "axes": np.asarray([0], np.int64),
                        "rest": np.asarray([8, 4], np.int64)}
    for i in range(3):
        nodes += [node("Shape", ["x"], f"s{i}"), node("Gather", [f"s{i}", "zero"], f"g{i}", axis=0),
                  node("Unsqueeze", [f"g{i}", "axes"], f"u{i}"), node("Concat", [f"u{i}", "rest"], f"t{i}", axis=0),
                  node("Reshape", ["x", f"t{i}"], f"r{i}")]
    nodes += [node("Add", ["r0", "r1"], "a"), node("Add", ["a", "r2"], "y")]
    model = make_model(nodes, [value("x", [2, 32])], [value("y", [2, 8, 4])], inits)
    out, result = apply(model, EliminateCommonSubexpressions())
    assert result.changed == 10  # Shape, Gather, Unsqueeze, Concat and Reshape of the second and third chain
    assert ops(out) == ["Add", "Add", "Concat", "Gather", "Reshape", "Shape", "Unsqueeze"]
    assert_same(model, out)
    assert candidates(model, EliminateCommonSubexpressions()).count == 10  # a dry run, chains included


def test_the_duplicate_that_writes_a_graph_output_is_kept():
    nodes = [node("Relu", ["x"], "a"), node("Relu", ["x"], "y"), node("Sigmoid", ["a"], "z")]
    model = make_model(nodes, [value("x", [2, 4])], [value("y", [2, 4]), value("z", [2, 4])])
    out, result = apply(model, EliminateCommonSubexpressions())
    assert result.changed == 1 and ops(out) == ["Relu", "Sigmoid"]
    assert [n.output[0] for n in out.graph.node if n.op_type == "Relu"] == ["y"]
    assert_same(model, out)


def test_two_graph_outputs_random_ops_and_other_attributes_are_not_merged():
    outputs = make_model([node("Relu", ["x"], "y"), node("Relu", ["x"], "z")], [value("x", [2, 4])],
                         [value("y", [2, 4]), value("z", [2, 4])])
    _, result = apply(outputs, EliminateCommonSubexpressions())
    assert result.changed == 0
    assert re.fullmatch(r"it duplicates Relu_y, and both write graph outputs", result.skipped[0].reason)

    random = [node("RandomNormalLike", ["x"], "n1"), node("RandomNormalLike", ["x"], "n2"), node("Add", ["n1", "n2"], "y")]
    model = make_model(random, [value("x", [2, 4])], [value("y", [2, 4])])
    assert apply(model, EliminateCommonSubexpressions())[1].changed == 0

    perms = [node("Transpose", ["x"], "t1", perm=[0, 2, 1]), node("Transpose", ["x"], "t2", perm=[0, 2, 1]),
             node("Transpose", ["x"], "t3", perm=[2, 1, 0]), node("Add", ["t1", "t2"], "a"), node("Cast", ["a"], "y", to=TensorProto.FLOAT),
             node("Cast", ["t3"], "z", to=TensorProto.DOUBLE)]
    model = make_model(perms, [value("x", [3, 3, 3])], [value("y", [3, 3, 3]), value("z", [3, 3, 3], TensorProto.DOUBLE)])
    out, result = apply(model, EliminateCommonSubexpressions())
    assert result.changed == 1 and ops(out).count("Transpose") == 2
