"""remove-neutral-elementwise: x+0, x−0, x·1, x/1 go (also in front of a graph output); a constant that
would broadcast x, a non-neutral constant and a graph input wired to a graph output are left alone."""

from __future__ import annotations

import re

import numpy as np
import pytest

from onnxmend.passes.cleanup.remove_neutral_elementwise import RemoveNeutralElementwise
from tests.builders import apply, assert_same, candidates, make_model, node, ops, value


def test_a_keras_normalization_with_zero_mean_and_unit_variance_goes():
    """EfficientNet's rescaling → Normalization(mean 0, variance 1) → Transpose."""
    nodes = [node("Mul", ["x", "scale"], "m"), node("Add", ["m", "zeros"], "a"), node("Mul", ["a", "ones"], "n"),
             node("Sub", ["n", "zeros"], "s"), node("Div", ["ones", "s"], "d"), node("Div", ["d", "ones"], "t"),
             node("Transpose", ["t"], "y", perm=[0, 3, 1, 2])]
    inits = {"scale": np.float32(1 / 255), "zeros": np.zeros((1, 1, 1, 3), np.float32), "ones": np.ones((1, 1, 1, 3), np.float32)}
    model = make_model(nodes, [value("x", [1, 8, 8, 3])], [value("y", [1, 3, 8, 8])], inits)
    out, result = apply(model, RemoveNeutralElementwise())
    assert result.changed == 4  # Div(1, s) is a reciprocal, not a division by one
    assert ops(out) == ["Div", "Mul", "Transpose"]
    assert_same(model, out)
    assert apply(out, RemoveNeutralElementwise())[1].changed == 0


def test_a_zero_bias_in_front_of_the_graph_output_goes():
    nodes = [node("MatMul", ["x", "w"], "h"), node("Add", ["zeros", "h"], "y")]
    inits = {"w": np.eye(4, dtype=np.float32), "zeros": np.zeros(4, np.float32)}
    model = make_model(nodes, [value("x", [2, 4])], [value("y", [2, 4])], inits)
    out, _ = apply(model, RemoveNeutralElementwise())
    assert ops(out) == ["MatMul"] and out.graph.output[0].name == "y"
    assert_same(model, out)


@pytest.mark.parametrize("case,pattern", [
    ("broadcast", r"the constant's size 2 would broadcast the input's dimension 1"),
    ("rank", r"the constant has rank 3, more than the input's 2"),
    ("io", r"the output is a graph output and its input is a graph input, a constant or read elsewhere"),
])
def test_must_not_fire(case, pattern):
    shape, zeros = ([1, 4], np.zeros((2, 4), np.float32)) if case == "broadcast" else ([2, 4], np.zeros((1, 1, 4), np.float32))
    if case == "io":
        zeros = np.zeros(4, np.float32)
    model = make_model([node("Add", ["x", "zeros"], "y")], [value("x", shape)], [value("y", None)], {"zeros": zeros})
    out, result = apply(model, RemoveNeutralElementwise())
    assert result.changed == 0 and ops(out) == ["Add"]
    assert re.fullmatch(pattern, result.skipped[0].reason)


def test_a_constant_that_is_not_neutral_is_no_candidate():
    model = make_model([node("Relu", ["x"], "r"), node("Mul", ["r", "two"], "y")], [value("x", [2, 4])],
                       [value("y", [2, 4])], {"two": np.full(4, 2.0, np.float32)})
    found = candidates(model, RemoveNeutralElementwise())
    assert found.count == 0 and found.skipped == []
