"""respell-layer-norm: unfusable decomposed LayerNorms in their shortest spelling, and when it must not fire."""

from __future__ import annotations

from collections import Counter

import numpy as np
import onnx
from onnx import TensorProto

from onnxmend.passes.infra.base import PassContext
from onnxmend.passes.norms.fuse_layer_norm import FuseLayerNorm
from onnxmend.passes.norms.respell_layer_norm import RespellLayerNorm
from tests.builders import apply, assert_same, const, make_model, node, ops, rand, run_passes
from tests.builders.norms import at_opset, decomposed_ln, tf_folded_ln

F32, F16 = TensorProto.FLOAT, TensorProto.FLOAT16
SHORTEST = Counter({"ReduceMean": 2, "Sub": 1, "Mul": 2, "Add": 2, "Sqrt": 1, "Div": 1})


def respelled(model: onnx.ModelProto, **context):
    return apply(model, RespellLayerNorm(), **context)


def test_tf2onnx_folded_norm_below_opset_17_is_respelled_and_then_left_alone() -> None:
    model = at_opset(tf_folded_ln(shape=(2, 3, 3, 4), axes=(-1,), form="neg"), 13)
    assert len(model.graph.node) == 13
    out, result = respelled(model)
    assert result.changed == 1 and Counter(ops(out)) == SHORTEST
    assert_same(model, out, atol=1e-5, rtol=1e-5)
    again, second = respelled(out)
    assert second.changed == 0 and ops(again) == ops(out)
    (skip,) = second.skipped
    assert skip.reason == "already in its shortest spelling (9 nodes)"


def test_sub_spelling_of_the_shift_is_respelled() -> None:
    model = at_opset(tf_folded_ln(shape=(2, 3, 3, 4), axes=(-1,), form="sub"), 13)
    out, result = respelled(model)
    assert result.changed == 1 and Counter(ops(out)) == SHORTEST
    assert_same(model, out, atol=1e-5, rtol=1e-5)


def test_gamma_that_varies_along_another_axis_stays_a_broadcast_mul_after_the_norm() -> None:
    # γ of shape (3, 1, 4) varies along axis 1, which is not normalized: it cannot be the node's scale.
    model = at_opset(tf_folded_ln(shape=(2, 3, 3, 4), axes=(-1,), gamma_shape=(3, 1, 4)), 13)
    out, result = respelled(model)
    assert result.changed == 1 and Counter(ops(out)) == SHORTEST
    assert_same(model, out, atol=1e-5, rtol=1e-5)


def test_pinned_layout_respells_a_channel_norm_without_any_transpose() -> None:
    model = tf_folded_ln(shape=(2, 4, 3, 3), axes=(1,), gamma_shape=(1, 4, 1, 1))
    ctx = PassContext(opset=17, fusions_may_transpose=False)
    out, report = run_passes(model, [FuseLayerNorm(), RespellLayerNorm()], ctx, verify=True)
    assert report.rejected == []
    assert Counter(n.op_type for n in out.graph.node) == SHORTEST
    reduce_axes = [list(a.ints) for n in out.graph.node if n.op_type == "ReduceMean" for a in n.attribute if a.name == "axes"]
    assert reduce_axes == [[1], [1]]
    assert_same(model, out, atol=1e-5, rtol=1e-5)


def test_a_fusable_norm_is_fused_first_and_the_respell_finds_nothing() -> None:
    model = tf_folded_ln(shape=(2, 4, 3, 3), axes=(1,), gamma_shape=(1, 4, 1, 1))
    out, report = run_passes(model, [FuseLayerNorm(), RespellLayerNorm()], PassContext(opset=17), verify=True)
    assert Counter(n.op_type for n in out.graph.node) == Counter({"LayerNormalization": 1, "Transpose": 2})
    assert [r.name for r in report.records if r.status == "applied"] == ["fuse-layer-norm"]


def test_the_shortest_spelling_is_not_rewritten() -> None:
    model = decomposed_ln(shape=(2, 5, 8), axes=(-1,), var="mul", rsqrt="div", affine="full", opset=13)
    out, result = respelled(model)
    assert result.changed == 0 and ops(out) == ops(model)
    assert [s.reason for s in result.skipped] == ["already in its shortest spelling (9 nodes)"]


def test_a_float16_cast_island_is_left_as_spelled() -> None:
    inits = {"eps": const(1e-5), "gamma": rand((8,), 2, np.float16), "beta": rand((8,), 3, np.float16)}
    nodes = [node("Cast", ["x"], "x32", to=F32), node("ReduceMean", ["x32"], "mean", axes=[-1]),
             node("Sub", ["x32", "mean"], "d"), node("Mul", ["d", "d"], "sq"), node("ReduceMean", ["sq"], "var", axes=[-1]),
             node("Add", ["var", "eps"], "ve"), node("Sqrt", ["ve"], "std"), node("Reciprocal", ["std"], "r"),
             node("Mul", ["d", "r"], "n"), node("Cast", ["n"], "n16", to=F16),
             node("Mul", ["n16", "gamma"], "g"), node("Add", ["g", "beta"], "y")]
    model = make_model(nodes, {"x": ((2, 5, 8), F16)}, ["y"], inits, opset=13)
    out, result = respelled(model)
    assert result.changed == 0 and ops(out) == ops(model)
    assert [s.reason for s in result.skipped] == ["a float16/bfloat16 Cast island is left as spelled"]


def test_opset_18_reduce_mean_takes_its_axes_as_an_input() -> None:
    model = tf_folded_ln(shape=(2, 4, 3, 3), axes=(1,), gamma_shape=(1, 4, 1, 1))
    model = onnx.version_converter.convert_version(model, 18)
    out, result = respelled(model, fusions_may_transpose=False)
    assert result.changed == 1 and Counter(ops(out)) == SHORTEST
    assert all(len(n.input) == 2 for n in out.graph.node if n.op_type == "ReduceMean")
    assert_same(model, out, atol=1e-5, rtol=1e-5)
