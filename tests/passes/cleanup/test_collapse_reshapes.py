"""collapse-reshapes: squeeze-excite Squeeze→Reshape identities go, Unsqueeze chains become one Reshape
(0 copies a dynamic batch), identity reshapes go also at a graph output; undecidable chains say why."""

from __future__ import annotations

import re

import numpy as np
import onnx

from onnxmend.passes.cleanup.collapse_reshapes import CollapseReshapes
from tests.builders import apply, assert_same, candidates, make_model, node, ops, rand, run, value


def _ints(*values: int) -> np.ndarray:
    return np.asarray(values, np.int64)


def _target(model: onnx.ModelProto) -> list[int]:
    reshape = next(n for n in model.graph.node if n.op_type == "Reshape")
    return onnx.numpy_helper.to_array(next(i for i in model.graph.initializer if i.name == reshape.input[1])).tolist()


def test_a_squeeze_excite_squeeze_then_reshape_is_the_identity():
    """tf2onnx's GlobalAveragePooling2D → Reshape((1, 1, C)): [1,8,1,1] → [1,8] → [1,8,1,1]."""
    nodes = [node("GlobalAveragePool", ["x"], "g"), node("Squeeze", ["g", "axes"], "s"),
             node("Reshape", ["s", "shape"], "r"), node("Conv", ["r", "w"], "c"), node("Mul", ["x", "c"], "y")]
    inits = {"axes": _ints(2, 3), "shape": _ints(1, 8, 1, 1), "w": rand((8, 8, 1, 1), 1)}
    model = make_model(nodes, [value("x", [1, 8, 4, 4])], [value("y", [1, 8, 4, 4])], inits)
    out, result = apply(model, CollapseReshapes())
    assert result.changed == 1 and ops(out) == ["Conv", "GlobalAveragePool", "Mul"]
    assert_same(model, out)
    assert apply(out, CollapseReshapes())[1].changed == 0


def test_an_unsqueeze_chain_on_a_dynamic_batch_becomes_one_reshape_copying_the_batch():
    """torch's ``s[..., None, None]``: s[b, 8] → [b, 8, 1] → [b, 8, 1, 1]."""
    nodes = [node("ReduceMean", ["x", "hw"], "s", keepdims=0), node("Unsqueeze", ["s", "last"], "u1"),
             node("Unsqueeze", ["u1", "last"], "u2"), node("Mul", ["x", "u2"], "y")]
    model = make_model(nodes, [value("x", ["b", 8, 4, 4])], [value("y", ["b", 8, 4, 4])],
                       {"hw": _ints(2, 3), "last": _ints(-1)}, opset=18)
    out, result = apply(model, CollapseReshapes())
    assert result.changed == 1 and ops(out) == ["Mul", "ReduceMean", "Reshape"]
    assert _target(out) == [0, 8, 1, 1]
    feeds = {"x": np.random.default_rng(2).standard_normal((3, 8, 4, 4)).astype(np.float32)}
    np.testing.assert_array_equal(run(model, feeds)[0], run(out, feeds)[0])


def test_a_static_flatten_unsqueeze_chain_becomes_one_reshape():
    nodes = [node("Flatten", ["x"], "f", axis=1), node("Unsqueeze", ["f", "zero"], "u"), node("Relu", ["u"], "y")]
    model = make_model(nodes, [value("x", [2, 3, 4])], [value("y", [1, 2, 12])], {"zero": _ints(0)})
    out, _ = apply(model, CollapseReshapes())
    assert ops(out) == ["Relu", "Reshape"] and _target(out) == [1, 2, 12]
    assert_same(model, out)


def test_an_identity_reshape_goes_also_when_it_writes_the_graph_output():
    nodes = [node("Relu", ["x"], "r"), node("Reshape", ["r", "same"], "y")]
    model = make_model(nodes, [value("x", [1, 16, 32])], [value("y", [1, 16, 32])], {"same": _ints(1, 16, 32)})
    out, result = apply(model, CollapseReshapes())
    assert result.changed == 1 and ops(out) == ["Relu"] and out.graph.output[0].name == "y"
    assert_same(model, out)

    passthrough = make_model([node("Reshape", ["x", "same"], "y")], [value("x", [1, 16, 32])], [value("y", [1, 16, 32])],
                             {"same": _ints(1, 16, 32)})
    assert apply(passthrough, CollapseReshapes())[1].changed == 0  # nothing could write y


def test_a_single_shape_changing_link_is_no_candidate():
    model = make_model([node("Reshape", ["x", "flat"], "y")], [value("x", [2, 8])], [value("y", [16])],
                       {"flat": _ints(16)})
    found = candidates(model, CollapseReshapes())
    assert found.count == 0 and found.skipped == []


def test_a_chain_with_two_moved_dynamic_dims_is_left_with_reason():
    """x[b, t, 8] → [1, b, t, 8] → [1, b, t, 8, 1]: b and t leave their positions; no Reshape target ends it."""
    nodes = [node("Unsqueeze", ["x", "zero"], "u1"), node("Unsqueeze", ["u1", "last"], "u2"), node("Relu", ["u2"], "y")]
    model = make_model(nodes, [value("x", ["b", "t", 8])], [value("y", [1, "b", "t", 8, 1])],
                       {"zero": _ints(0), "last": _ints(-1)})
    out, result = apply(model, CollapseReshapes())
    assert result.changed == 0 and ops(out) == ["Relu", "Unsqueeze", "Unsqueeze"]
    assert re.match(r"the chain's output has several dynamic dims that are not copies", result.skipped[0].reason)
