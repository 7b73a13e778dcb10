"""push-transposes and io-layout: one test per handler, broadcasting, sharing, boundaries, idempotence."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from onnxmend.passes.infra.base import PassContext
from onnxmend.passes.layout.findings import transpose_findings as inspect_layout
from onnxmend.passes.layout.io_layout import IoLayout
from onnxmend.passes.layout.push_transposes import PushTransposes
from tests.builders import init, make_model, op_counts, run_passes, transpose, value
from tests.builders.layout import TO_NCHW, TO_NHWC, UNARY, X, Y, not_pushed, pushed, sandwich

RNG = np.random.default_rng(7)


@pytest.mark.parametrize("op", UNARY)
def test_unary_elementwise(op):
    out, _ = pushed(sandwich([helper.make_node(op, ["y"], ["z"])]))
    assert op_counts(out)[op] == 1


def test_leaky_relu_clip_and_cast_keep_their_attributes_and_inputs():
    nodes = [helper.make_node("LeakyRelu", ["y"], ["a"], alpha=0.3),
             helper.make_node("Clip", ["a", "lo", "hi"], ["b"]),
             helper.make_node("Cast", ["b"], ["z"], to=TensorProto.DOUBLE)]
    m = sandwich(nodes, inits=[init("lo", np.float32(-0.5)), init("hi", np.float32(0.7))], out_dtype=TensorProto.DOUBLE)
    out, _ = pushed(m)
    assert op_counts(out) == {"LeakyRelu": 1, "Clip": 1, "Cast": 1}


def test_gelu_at_opset_20():
    out, _ = pushed(sandwich([helper.make_node("Gelu", ["y"], ["z"], approximate="tanh")], opset=20))
    assert op_counts(out) == {"Gelu": 1}


@pytest.mark.parametrize("op", ["Add", "Sub", "Mul", "Div", "Pow", "Max", "Min"])
def test_binary_with_per_channel_constant(op):
    c = RNG.uniform(0.5, 1.5, size=[3]).astype(np.float32)
    out, _ = pushed(sandwich([helper.make_node("Abs", ["y"], ["yabs"]), helper.make_node(op, ["yabs", "c"], ["z"])],
                             inits=[init("c", c)]))
    permuted = [i for i in out.graph.initializer if i.name != "c"]
    assert [list(i.dims) for i in permuted] == [[3, 1, 1]]  # [C] in NHWC is [C,1,1] in NCHW


@pytest.mark.parametrize("shape", [[], [1], [3], [5, 3], [4, 5, 3], [1, 4, 1, 3], [2, 4, 5, 3]])
def test_broadcast_constants_of_every_rank(shape):
    c = RNG.standard_normal(shape).astype(np.float32)
    pushed(sandwich([helper.make_node("Add", ["c", "y"], ["z"])], inits=[init("c", c)]))


def test_constant_with_more_axes_than_the_tensor_is_not_moved():
    m = make_model([transpose("x", "y", (1, 0)), helper.make_node("Add", ["y", "c"], ["z"])],
              [value("x", [3, 4])], [value("z", [2, 4, 3])], [init("c", np.ones([2, 4, 3], np.float32))])
    not_pushed(m, "more axes than the transposed tensor")


@pytest.mark.parametrize("op", ["Equal", "Greater", "Less"])
def test_comparisons(op):
    m = make_model([transpose("x", "y", TO_NHWC), helper.make_node(op, ["y", "c"], ["b"]),
               helper.make_node("Cast", ["b"], ["z"], to=TensorProto.FLOAT), transpose("z", "out", TO_NCHW)],
              [value("x", X)], [value("out", X)], [init("c", np.zeros([3], np.float32))])
    pushed(m)


def test_where_with_constant_condition_and_values():
    cond = RNG.random([5, 3]) > 0.5
    pushed(sandwich([helper.make_node("Where", ["cond", "y", "v"], ["z"])],
                    inits=[init("cond", cond), init("v", np.float32(2.0))]))


def test_prelu_slope_per_channel():
    pushed(sandwich([helper.make_node("PRelu", ["y", "s"], ["z"])], inits=[init("s", np.float32([0.1, 0.2, 0.3]))]))


def test_two_operands_with_the_same_transpose():
    nodes = [transpose("x", "y", TO_NHWC), transpose("w", "v", TO_NHWC), helper.make_node("Mul", ["y", "v"], ["z"]),
             transpose("z", "out", TO_NCHW)]
    m = make_model(nodes, [value("x", X), value("w", X)], [value("out", X)])
    out, _ = pushed(m)
    assert op_counts(out) == {"Mul": 1}


def test_runtime_operand_without_transpose_is_not_moved():
    m = sandwich([helper.make_node("Add", ["y", "g"], ["z"])], extra_inputs=[value("g", Y)])
    not_pushed(m, "neither constant nor transposed the same way")


def test_shared_constant_is_copied_not_mutated():
    c = RNG.standard_normal([3]).astype(np.float32)
    nodes = [transpose("x", "y", TO_NHWC), helper.make_node("Add", ["y", "c"], ["z"]), transpose("z", "out", TO_NCHW),
             helper.make_node("Mul", ["g", "c"], ["other"])]
    m = make_model(nodes, [value("x", X), value("g", Y)], [value("out", X), value("other", Y)], [init("c", c)])
    out, _ = pushed(m)
    original = next(i for i in out.graph.initializer if i.name == "c")
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(original), c)


def test_transpose_that_is_a_graph_output_stays():
    nodes = [transpose("x", "y", TO_NHWC), helper.make_node("Relu", ["y"], ["z"])]
    m = make_model(nodes, [value("x", X)], [value("y", Y), value("z", Y)])
    not_pushed(m, "would add 1 Transposes and remove 0")


def test_transposes_drift_to_the_output_and_keep_its_name():
    m = make_model([transpose("x", "y", TO_NHWC), helper.make_node("Relu", ["y"], ["z"])], [value("x", X)], [value("z", Y)])
    out, _ = pushed(m, transposes=1)
    assert [n.op_type for n in out.graph.node] == ["Relu", "Transpose"]
    assert out.graph.node[1].output[0] == "z"


def test_concat_with_constant_and_transposed_operands():
    nodes = [transpose("x", "y", TO_NHWC), transpose("w", "v", TO_NHWC),
             helper.make_node("Concat", ["y", "v", "c"], ["z"], axis=-1)]
    out_shape = [2, 3 + 3 + 2, 4, 5]
    m = make_model(nodes + [transpose("z", "out", TO_NCHW)], [value("x", X), value("w", X)], [value("out", out_shape)],
              [init("c", RNG.standard_normal([2, 4, 5, 2]).astype(np.float32))])
    out, _ = pushed(m)
    assert helper.get_attribute_value(next(n for n in out.graph.node if n.op_type == "Concat").attribute[0]) == 1


def test_split_remaps_axis_and_cancels_on_every_output():
    nodes = [transpose("x", "y", TO_NHWC), helper.make_node("Split", ["y", "sizes"], ["a", "b"], axis=2),
             transpose("a", "oa", TO_NCHW), transpose("b", "ob", TO_NCHW)]
    m = make_model(nodes, [value("x", X)], [value("oa", [2, 3, 4, 2]), value("ob", [2, 3, 4, 3])],
              [init("sizes", np.int64([2, 3]))])
    pushed(m)


@pytest.mark.parametrize("axes", [[2], None])
def test_slice_remaps_axes(axes):
    inputs = ["y", "starts", "ends"] + (["axes"] if axes else [])
    inits = [init("starts", np.int64([1] * (len(axes) if axes else 3))), init("ends", np.int64([3] * (len(axes) if axes else 3)))]
    inits += [init("axes", np.int64(axes))] if axes else []
    shape = [2, 3, 4, 2] if axes else [1, 3, 2, 2]
    nodes = [transpose("x", "y", TO_NHWC), helper.make_node("Slice", inputs, ["z"]), transpose("z", "out", TO_NCHW)]
    pushed(make_model(nodes, [value("x", X)], [value("out", shape)], inits))


@pytest.mark.parametrize("opset", [17, 18])
def test_pad_remaps_pads(opset):
    pads = np.int64([0, 1, 2, 0, 0, 3, 0, 1])  # NHWC begin/end
    nodes = [transpose("x", "y", TO_NHWC), helper.make_node("Pad", ["y", "pads", "v"], ["z"], mode="constant"),
             transpose("z", "out", TO_NCHW)]
    m = make_model(nodes, [value("x", X)], [value("out", [2, 4, 8, 7])], [init("pads", pads), init("v", np.float32(0.5))], opset)
    pushed(m)


@pytest.mark.parametrize("op", ["ReduceMean", "ReduceSum", "ReduceMax", "ReduceL2", "ReduceSumSquare", "ReduceProd"])
@pytest.mark.parametrize("opset", [17, 18])
def test_reduce_keepdims(op, opset):
    as_input = opset >= 18 or op == "ReduceSum"
    node = helper.make_node(op, ["y", "axes"] if as_input else ["y"], ["z"], keepdims=1, **({} if as_input else {"axes": [-1]}))
    inits = [init("axes", np.int64([-1]))] if as_input else []
    nodes = [transpose("x", "y", TO_NHWC), node, transpose("z", "out", TO_NCHW)]
    pushed(make_model(nodes, [value("x", X)], [value("out", [2, 1, 4, 5])], inits, opset), exact=False)


def test_reduce_without_keepdims_drops_the_reduced_axes_from_the_perm():
    nodes = [transpose("x", "y", TO_NHWC), helper.make_node("ReduceMean", ["y"], ["z"], axes=[1, 2], keepdims=0)]
    m = make_model(nodes, [value("x", X)], [value("z", [2, 3])])
    out, _ = pushed(m, exact=False)
    assert op_counts(out) == {"ReduceMean": 1}


def test_reduce_over_one_axis_without_keepdims():
    nodes = [transpose("x", "y", TO_NHWC), helper.make_node("ReduceMax", ["y"], ["z"], axes=[1], keepdims=0)]
    out, _ = pushed(make_model(nodes, [value("x", X)], [value("z", [2, 5, 3])]), transposes=1)
    assert [n.op_type for n in out.graph.node] == ["ReduceMax", "Transpose"]


@pytest.mark.parametrize("keepdims,shape", [(1, [2, 4, 1, 3]), (0, [2, 4, 3])])
def test_argmax(keepdims, shape):
    nodes = [transpose("x", "y", TO_NHWC), helper.make_node("ArgMax", ["y"], ["z"], axis=2, keepdims=keepdims)]
    out, _ = pushed(make_model(nodes, [value("x", X)], [value("z", shape, TensorProto.INT64)]), transposes=1)
    assert out.graph.node[0].op_type == "ArgMax"


def test_squeeze_and_unsqueeze():
    nodes = [transpose("x", "y", TO_NHWC), helper.make_node("Squeeze", ["y", "sq"], ["s"]),
             helper.make_node("Unsqueeze", ["s", "uq"], ["z"]), helper.make_node("Transpose", ["z"], ["out"], perm=[0, 3, 1, 2])]
    m = make_model(nodes, [value("x", [2, 3, 1, 5])], [value("out", [2, 3, 1, 5])],
              [init("sq", np.int64([1])), init("uq", np.int64([1]))])
    pushed(m)


def test_softmax_axis_remap_at_opset_13_and_refusal_before():
    nodes = [transpose("x", "y", TO_NHWC), helper.make_node("Softmax", ["y"], ["z"], axis=-1), transpose("z", "out", TO_NCHW)]
    pushed(make_model(nodes, [value("x", X)], [value("out", X)]), exact=False)
    not_pushed(make_model(nodes, [value("x", X)], [value("out", X)], opset=11), "coerces axes")


def bn_model(perm):
    inits = [init(n, RNG.uniform(0.5, 1.5, [X[1]]).astype(np.float32)) for n in ("s", "b", "m", "v")]
    nodes = [transpose("x", "y", perm), helper.make_node("BatchNormalization", ["y", "s", "b", "m", "v"], ["z"]),
             transpose("z", "out", perm)]
    out_shape = [X[p] for p in perm]
    return make_model(nodes, [value("x", X)], [value("out", [out_shape[p] for p in perm])], inits)


def test_batch_norm_only_when_channel_stays_on_axis_1():
    pushed(bn_model((0, 1, 3, 2)), exact=False)
    inits = [init(n, np.ones([Y[1]], np.float32)) for n in ("s", "b", "m", "v")]
    nodes = [transpose("x", "y", TO_NHWC), helper.make_node("BatchNormalization", ["y", "s", "b", "m", "v"], ["z"])]
    not_pushed(make_model(nodes, [value("x", X)], [value("z", Y)], inits), "normalizes axis 1")


def test_instance_norm_and_global_pool_need_batch_and_channel_in_place():
    inits = [init("s", np.ones([3], np.float32)), init("b", np.zeros([3], np.float32))]
    ok = [transpose("x", "y", (0, 1, 3, 2)), helper.make_node("InstanceNormalization", ["y", "s", "b"], ["n"]),
          helper.make_node("GlobalAveragePool", ["n"], ["z"])]
    out, _ = pushed(make_model(ok, [value("x", X)], [value("z", [2, 3, 1, 1])], inits), exact=False)
    assert op_counts(out) == {"InstanceNormalization": 1, "GlobalAveragePool": 1}
    bad = [transpose("x", "y", TO_NCHW), helper.make_node("GlobalMaxPool", ["y"], ["z"])]
    not_pushed(make_model(bad, [value("x", X)], [value("z", [2, 5, 1, 1])]), "batch and channel on axes 0 and 1")


def test_layer_norm_only_when_normalized_axes_stay_trailing():
    inits = [init("s", RNG.standard_normal([5]).astype(np.float32)), init("b", RNG.standard_normal([5]).astype(np.float32))]
    ok = [transpose("x", "y", (1, 0, 2, 3)), helper.make_node("LayerNormalization", ["y", "s", "b"], ["z"], axis=-1),
          transpose("z", "out", (1, 0, 2, 3))]
    pushed(make_model(ok, [value("x", X)], [value("out", X)], inits), exact=False)
    inits3 = [init("s", np.ones([3], np.float32)), init("b", np.zeros([3], np.float32))]
    bad = [transpose("x", "y", TO_NHWC), helper.make_node("LayerNormalization", ["y", "s", "b"], ["z"], axis=-1)]
    not_pushed(make_model(bad, [value("x", X)], [value("z", Y)], inits3), "would not stay trailing")


def test_resize_scales_are_remapped():
    nodes = [transpose("x", "y", TO_NHWC), helper.make_node("Resize", ["y", "", "scales"], ["z"], mode="nearest"),
             transpose("z", "out", TO_NCHW)]
    m = make_model(nodes, [value("x", X)], [value("out", [2, 3, 8, 10])], [init("scales", np.float32([1, 2, 2, 1]))])
    out, _ = pushed(m)
    scales = next(i for i in out.graph.initializer if "scales" in i.name)
    assert onnx.numpy_helper.to_array(scales).tolist() == [1, 1, 2, 2]


def test_quantize_dequantize_per_channel_axis():
    scale = np.float32([0.1, 0.2, 0.3])
    nodes = [transpose("x", "y", TO_NHWC), helper.make_node("QuantizeLinear", ["y", "sc", "zp"], ["q"], axis=3),
             helper.make_node("DequantizeLinear", ["q", "sc", "zp"], ["z"], axis=3), transpose("z", "out", TO_NCHW)]
    m = make_model(nodes, [value("x", X)], [value("out", X)], [init("sc", scale), init("zp", np.zeros(3, np.int8))])
    pushed(m)


def test_matmul_over_channels_becomes_a_1x1_conv():
    w = RNG.standard_normal([3, 6]).astype(np.float32)
    nodes = [transpose("x", "y", TO_NHWC), helper.make_node("MatMul", ["y", "w"], ["z"]), transpose("z", "out", TO_NCHW)]
    out, _ = pushed(make_model(nodes, [value("x", X)], [value("out", [2, 6, 4, 5])], [init("w", w)]), exact=False)
    assert op_counts(out) == {"Conv": 1}


def test_matmul_with_batch_only_transpose_and_refusal_otherwise():
    w = RNG.standard_normal([5, 6]).astype(np.float32)
    nodes = [transpose("x", "y", (0, 2, 1, 3)), helper.make_node("MatMul", ["y", "w"], ["z"]), transpose("z", "out", (0, 2, 1, 3))]
    out, _ = pushed(make_model(nodes, [value("x", X)], [value("out", [2, 3, 4, 6])], [init("w", w)]))
    assert op_counts(out) == {"MatMul": 1}
    w4 = np.ones([4, 6], np.float32)
    bad = [transpose("x", "y", (0, 1, 3, 2)), helper.make_node("MatMul", ["y", "w"], ["z"])]
    not_pushed(make_model(bad, [value("x", X)], [value("z", [2, 3, 5, 6])], [init("w", w4)]), "neither last nor channel")


def test_gemm_absorbs_the_transpose_into_trans_a():
    nodes = [transpose("x", "y", (1, 0)), helper.make_node("Gemm", ["y", "w"], ["z"])]
    m = make_model(nodes, [value("x", [4, 3])], [value("z", [3, 2])], [init("w", RNG.standard_normal([4, 2]).astype(np.float32))])
    out, _ = pushed(m)
    assert op_counts(out) == {"Gemm": 1}


def test_constant_transpose_is_folded_and_pairs_merge_and_identity_drops():
    nodes = [transpose("c", "ct", (1, 0)), helper.make_node("Add", ["x", "ct"], ["a"]),
             transpose("a", "b", (1, 0)), transpose("b", "z", (1, 0))]
    m = make_model(nodes, [value("x", [3, 4])], [value("z", [3, 4])], [init("c", RNG.standard_normal([4, 3]).astype(np.float32))])
    out, _ = pushed(m)
    assert op_counts(out) == {"Add": 1}


def test_transpose_moving_only_unit_axes_merges_into_reshape():
    nodes = [helper.make_node("Reshape", ["x", "shape"], ["r"]), transpose("r", "z", TO_NCHW)]
    m = make_model(nodes, [value("x", [2, 3])], [value("z", [2, 3, 1, 1])], [init("shape", np.int64([2, 1, 1, 3]))])
    out, _ = pushed(m)
    assert op_counts(out) == {"Reshape": 1}


def convnext_block(c: int = 4, hidden: int = 8) -> onnx.ModelProto:
    """Depthwise conv, NHWC LayerNorm (decomposed), MLP with exact Gelu, layer scale, NCHW residual."""
    f = lambda *s: RNG.standard_normal(s).astype(np.float32)  # noqa: E731
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "dw"], ["d"], group=c, pads=[1, 1, 1, 1]), transpose("d", "h", TO_NHWC),
        n("ReduceMean", ["h"], ["mu"], axes=[3]), n("Sub", ["h", "mu"], ["xc"]), n("Mul", ["xc", "xc"], ["sq"]),
        n("ReduceMean", ["sq"], ["var"], axes=[-1]), n("Add", ["var", "eps"], ["ve"]), n("Sqrt", ["ve"], ["sd"]),
        n("Reciprocal", ["sd"], ["inv"]), n("Mul", ["xc", "inv"], ["xn"]), n("Mul", ["xn", "gamma"], ["xg"]),
        n("Add", ["xg", "beta"], ["ln"]), n("MatMul", ["ln", "w1"], ["m1"]), n("Add", ["m1", "b1"], ["a1"]),
        n("Div", ["a1", "sqrt2"], ["g0"]), n("Erf", ["g0"], ["g1"]), n("Add", ["g1", "one"], ["g2"]),
        n("Mul", ["a1", "g2"], ["g3"]), n("Mul", ["g3", "half"], ["g4"]), n("MatMul", ["g4", "w2"], ["m2"]),
        n("Mul", ["m2", "ls"], ["s"]), transpose("s", "st", TO_NCHW), n("Add", ["x", "st"], ["out"]),
    ]
    inits = [init("dw", f(c, 1, 3, 3)), init("eps", np.float32(1e-6)), init("gamma", f(c)), init("beta", f(c)),
             init("w1", f(c, hidden)), init("b1", f(hidden)), init("sqrt2", np.float32(np.sqrt(2))),
             init("one", np.float32(1)), init("half", np.float32(0.5)), init("w2", f(hidden, c)), init("ls", f(c))]
    return make_model(nodes, [value("x", [1, c, 6, 6])], [value("out", [1, c, 6, 6])], inits)


def test_convnext_block_ends_without_transposes():
    out, _ = pushed(convnext_block(), exact=False)
    assert op_counts(out)["Conv"] == 3 and "MatMul" not in op_counts(out)


def test_pipeline_on_convnext_block_is_gated_and_reaches_a_fixed_point():
    m = convnext_block()
    out, report = run_passes(m, [IoLayout(), PushTransposes()], PassContext(opset=17, layout="nchw"))
    assert not report.rejected and "Transpose" not in report.ops_after
    assert inspect_layout(m)["transposes"] == 2 and inspect_layout(out)["transposes"] == 0


def test_an_inverse_pair_cancels_in_the_visit_that_merges_it():
    # x ─T(0,2,3,1)─ Relu ─T(0,3,1,2)─ out: the Transpose moves below Relu and meets its inverse; the merge
    # leaves an identity, removed at once: two changes (the push, the cancelled pair), not a third in a
    # sweep of its own
    out, result = pushed(sandwich([helper.make_node("Relu", ["y"], ["z"])]))
    assert op_counts(out) == {"Relu": 1} and result.changed == 2
