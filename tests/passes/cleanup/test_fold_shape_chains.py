"""fold-shape-chains: computed Reshape targets on dynamic shapes become constants with 0 (copy) and -1
(infer), static values read from partially dynamic shapes become constants; declined chains say why."""

from __future__ import annotations

import re

import numpy as np
import onnx
from onnx import TensorProto, helper

from onnxmend.passes.cleanup.fold_shape_chains import FoldShapeChains
from tests.builders import apply, candidates, make_model, node, ops, rand, run, value

I64 = TensorProto.INT64


def _target(model: onnx.ModelProto) -> list[int]:
    reshape = next(n for n in model.graph.node if n.op_type == "Reshape")
    found = {i.name: i for i in model.graph.initializer}
    return onnx.numpy_helper.to_array(found[reshape.input[1]]).tolist()


def _assert_same(before: onnx.ModelProto, after: onnx.ModelProto, shape: tuple[int, ...]) -> None:
    feeds = {"x": np.random.default_rng(3).standard_normal(shape).astype(np.float32)}
    for ref, act in zip(run(before, feeds), run(after, feeds)):
        assert ref.shape == act.shape
        np.testing.assert_array_equal(ref, act)


def _view_model(dims: list[str], out_shape: list, x_shape: list, extra=(), concat=None,
                opset: int = 17) -> onnx.ModelProto:
    """x ─MatMul─ q; q ─Reshape(Concat(dims))─ y, each dim ``shape:i`` (Shape(x)[i]) or ``c:N``: what torch's
    legacy exporter writes for ``q.view(b, t, 4, 4)``."""
    nodes = [node("MatMul", ["x", "w"], "q"), node("Shape", ["x"], "s")]
    pieces, inits = [], {"w": rand((16, 16), 1)}
    for i, dim in enumerate(dims):
        kind, arg = dim.split(":")
        if kind == "c":
            inits[f"c{i}"] = np.asarray([int(arg)], np.int64)
            pieces.append(f"c{i}")
        else:
            inits[f"i{i}"] = np.asarray(int(arg), np.int64)
            inits[f"axes{i}"] = np.asarray([0], np.int64)
            nodes += [node("Gather", ["s", f"i{i}"], f"g{i}", axis=0), node("Unsqueeze", [f"g{i}", f"axes{i}"], f"u{i}")]
            pieces.append(f"u{i}")
    if extra:
        inits["two"] = np.asarray([2], np.int64)
    nodes += list(extra) + [node("Concat", concat or pieces, "target", axis=0), node("Reshape", ["q", "target"], "y")]
    return make_model(nodes, [value("x", x_shape)], [value("y", out_shape)], inits, opset=opset)


def test_a_dynamic_batch_is_copied_with_zero():
    model = _view_model(["shape:0", "c:8", "c:4", "c:4"], ["b", 8, 4, 4], ["b", 8, 16])
    out, result = apply(model, FoldShapeChains())
    assert result.changed == 1 and ops(out) == ["MatMul", "Reshape"]
    assert _target(out) == [0, 8, 4, 4]
    _assert_same(model, out, (3, 8, 16))
    assert apply(out, FoldShapeChains())[1].changed == 0


def test_before_opset_14_the_target_is_written_without_allowzero():
    """Reshape has no allowzero before opset 14: writing it (even as 0) made the checker refuse the graph."""
    model = _view_model(["shape:0", "c:8", "c:4", "c:4"], ["b", 8, 4, 4], ["b", 8, 16], opset=13)
    out, result = apply(model, FoldShapeChains())
    reshape = next(n for n in out.graph.node if n.op_type == "Reshape")
    assert result.changed == 1 and _target(out) == [0, 8, 4, 4] and not reshape.attribute
    onnx.checker.check_model(out, full_check=True)
    _assert_same(model, out, (3, 8, 16))


def test_two_copied_dims_and_one_inferred():
    model = _view_model(["shape:0", "shape:1", "c:4", "c:4"], ["b", "t", 4, 4], ["b", "t", 16])
    out, _ = apply(model, FoldShapeChains())
    assert ops(out) == ["MatMul", "Reshape"] and _target(out) == [0, 0, 4, 4]
    _assert_same(model, out, (2, 5, 16))

    # q.view(b, t * 2, 8): the doubled length is no copy, so it is the one inferred dim
    doubled = [node("Mul", ["u1", "two"], "t2")]
    model = _view_model(["shape:0", "shape:1", "c:8"], ["b", None, 8], ["b", "t", 16], doubled, ["u0", "t2", "c2"])
    out, _ = apply(model, FoldShapeChains())
    assert ops(out) == ["MatMul", "Reshape"] and _target(out) == [0, -1, 8]
    _assert_same(model, out, (2, 5, 16))


def test_static_dims_read_from_a_partially_dynamic_shape_become_a_constant():
    """Expand(c, Shape(x, start=2)) on x[b, 3, 8, 8] reads only the static 8, 8."""
    nodes = [helper.make_node("Shape", ["x"], ["hw"], start=2), node("Expand", ["c", "hw"], "e"),
             node("Add", ["x", "e"], "y")]
    model = make_model(nodes, [value("x", ["b", 3, 8, 8])], [value("y", ["b", 3, 8, 8])], {"c": rand((1, 8), 2)})
    out, result = apply(model, FoldShapeChains())
    assert result.changed == 1 and ops(out) == ["Add", "Expand"]
    _assert_same(model, out, (2, 3, 8, 8))


def test_two_dynamic_dims_that_are_not_copies_are_left_with_reason():
    """q.view(t, b, 16) on q[b, t, 16]: neither dim keeps its position, and Reshape infers only one."""
    model = _view_model(["shape:1", "shape:0", "c:16"], ["t", "b", 16], ["b", "t", 16])
    out, result = apply(model, FoldShapeChains())
    assert result.changed == 0 and "Concat" in ops(out)
    assert re.fullmatch(r"2 target dims are dynamic and 2 of them are not copies of the input's; a Reshape "
                        r"infers only one \(-1\)", result.skipped[0].reason)
    assert candidates(model, FoldShapeChains()).count == 0


def test_a_target_that_is_no_shape_chain_is_left_with_reason():
    model = make_model([node("Reshape", ["x", "target"], "y")],
                       [value("x", [2, 8]), value("target", [2], I64)], [value("y", [None, None])])
    _, result = apply(model, FoldShapeChains())
    assert result.changed == 0
    assert result.skipped[0].reason == "the target shape is not computed by a Shape/Gather/Concat chain"
