"""fuse-layer-norm: every decomposed spelling, real exporter output, must-not-fire cases, idempotence."""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from onnxmend.passes.norms.fuse_layer_norm import FuseLayerNorm
from tests.builders import apply, assert_same, const, make_model, node, ops, rand
from tests.builders.norms import decomposed_ln, tf_folded_ln

F32, F16 = TensorProto.FLOAT, TensorProto.FLOAT16


def fused(model: onnx.ModelProto, opset: int | None = None, **context):
    out, result = apply(model, FuseLayerNorm(), opset=opset, **context)
    return out, result


def ln_node(model: onnx.ModelProto) -> onnx.NodeProto:
    (ln,) = [n for n in model.graph.node if n.op_type == "LayerNormalization"]
    return ln


def assert_idempotent(model: onnx.ModelProto) -> None:
    _, again = fused(model)
    assert again.changed == 0


@pytest.mark.parametrize("mean", ["attr", "gap"])
@pytest.mark.parametrize("var", ["pow", "mul", "sumsq"])
@pytest.mark.parametrize("rsqrt", ["div", "recip", "pow"])
def test_spellings_fuse_to_one_node(mean: str, var: str, rsqrt: str) -> None:
    shape, axes = ((2, 4, 3, 5), (2, 3)) if mean == "gap" else ((2, 5, 8), (-1,))
    model = decomposed_ln(shape=shape, axes=axes, mean=mean, var=var, rsqrt=rsqrt)
    out, result = fused(model)
    assert result.changed == 1
    assert ops(out) == ["LayerNormalization"]
    assert onnx.helper.get_attribute_value(ln_node(out).attribute[0]) == -len(axes)
    assert_same(model, out, atol=1e-5)
    assert_idempotent(out)


def test_opset18_axes_input() -> None:
    model = decomposed_ln(mean="input", opset=18)
    out, result = fused(model)
    assert ops(out) == ["LayerNormalization"]
    assert_same(model, out, atol=1e-5)


@pytest.mark.parametrize("affine, expected", [("none", 1), ("scale", 1), ("full", 1)])
def test_affine_absent_or_partial(affine: str, expected: int) -> None:
    model = decomposed_ln(affine=affine)
    out, result = fused(model)
    assert result.changed == expected
    assert ops(out) == ["LayerNormalization"]
    assert_same(model, out, atol=1e-5)


def test_chw_normalization_with_full_affine() -> None:
    model = decomposed_ln(shape=(2, 4, 3, 3), axes=(-3, -2, -1))
    out, _ = fused(model)
    assert ops(out) == ["LayerNormalization"]
    assert {a.name: onnx.helper.get_attribute_value(a) for a in ln_node(out).attribute}["axis"] == -3
    assert_same(model, out, atol=1e-5)


def test_chw_with_per_channel_gamma_is_expanded() -> None:
    model = decomposed_ln(shape=(2, 4, 3, 3), axes=(1, 2, 3), gamma_shape=(4, 1, 1))
    out, _ = fused(model)
    assert ops(out) == ["LayerNormalization"]
    scale = next(i for i in out.graph.initializer if i.name == ln_node(out).input[1])
    assert list(scale.dims) == [4, 3, 3]
    assert_same(model, out, atol=1e-5)


def test_tf_contrib_hwc_with_per_channel_gamma() -> None:
    model = tf_folded_ln(shape=(2, 3, 3, 4), axes=(1, 2, 3), gamma_shape=(4,))
    out, result = fused(model)
    assert result.changed == 1 and ops(out) == ["LayerNormalization"]
    scale = next(i for i in out.graph.initializer if i.name == ln_node(out).input[1])
    assert list(scale.dims) == [3, 3, 4]
    assert_same(model, out, atol=1e-5)
    assert_idempotent(out)


@pytest.mark.parametrize("form", ["neg", "sub"])
def test_tf2onnx_folded_affine(form: str) -> None:
    model = tf_folded_ln(form=form, gamma_shape=(1, 1, 1, 4))
    out, result = fused(model)
    assert result.changed == 1 and ops(out) == ["LayerNormalization"]
    assert_same(model, out, atol=1e-5)


def test_gamma_varying_over_batch_axis_stays_a_trailing_mul() -> None:
    model = decomposed_ln(shape=(2, 5, 8), gamma_shape=(5, 1))
    out, result = fused(model)
    assert result.changed == 1
    assert ops(out) == ["Add", "LayerNormalization", "Mul"]
    assert_same(model, out, atol=1e-5)


def test_folded_gamma_varying_over_batch_axis_is_rebuilt_after_the_node() -> None:
    model = tf_folded_ln(shape=(2, 3, 3, 4), gamma_shape=(3, 1, 4))
    out, _ = fused(model)
    assert ops(out) == ["Add", "LayerNormalization", "Mul"]
    assert_same(model, out, atol=1e-5)


def _skips(model: onnx.ModelProto, opset: int | None = None) -> list[str]:
    out, result = fused(model, opset)
    assert result.changed == 0
    assert "LayerNormalization" not in ops(out)
    return [s.reason for s in result.skipped]


def _assert_reason(reasons: list[str], pattern: str) -> None:
    assert any(re.search(pattern, r) for r in reasons), reasons


@pytest.mark.parametrize("model, pattern", [
    (lambda: decomposed_ln(shape=(1, 5, 8), gamma_shape=(3, 1, 8)), r"beyond x's shape"),
    (lambda: decomposed_ln(eps_input=True), r"epsilon .* is not a constant"),
    (lambda: decomposed_ln(shape=(2, 4, 3, 3), axes=(1, 3), affine="none"), r"axes \(-3, -1\) are not a contiguous set"),
])
def test_must_not_fire(model, pattern: str) -> None:
    _assert_reason(_skips(model()), pattern)


def test_epsilon_after_sqrt_is_rejected() -> None:
    inits = {"two": const(2.0), "eps": const(1e-5)}
    nodes = [node("ReduceMean", ["x"], "mean", axes=[-1]), node("Sub", ["x", "mean"], "d"),
             node("Pow", ["d", "two"], "sq"), node("ReduceMean", ["sq"], "var", axes=[-1]),
             node("Sqrt", ["var"], "std"), node("Add", ["std", "eps"], "se"), node("Div", ["d", "se"], "y")]
    _assert_reason(_skips(make_model(nodes, {"x": ((2, 8), F32)}, ["y"], inits)), r"after Sqrt")


def test_shared_intermediate_is_rejected() -> None:
    model = decomposed_ln()
    model.graph.output.append(onnx.helper.make_tensor_value_info("d", F32, None))
    _assert_reason(_skips(model), r"intermediate d has other consumers")


def test_fp16_without_cast_is_rejected() -> None:
    model = decomposed_ln(affine="none")
    for init in model.graph.initializer:
        init.CopyFrom(onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(init).astype(np.float16), init.name))
    model.graph.input[0].type.tensor_type.elem_type = F16
    model.graph.output[0].type.tensor_type.elem_type = F16
    del model.graph.value_info[:]
    _assert_reason(_skips(onnx.shape_inference.infer_shapes(model)), r"float16/bfloat16 without a Cast")


def test_old_opset_is_left_with_reason() -> None:
    model = decomposed_ln(opset=13)
    _assert_reason(_skips(model), r"needs opset 17; the graph is at 13")


def test_fp16_cast_island_becomes_stash_type_node() -> None:
    inits = {"two": const(2.0), "eps": const(1e-5), "gamma": rand((8,), 2, np.float16), "beta": rand((8,), 3, np.float16)}
    nodes = [node("Cast", ["x"], "x32", to=F32), node("ReduceMean", ["x32"], "mean", axes=[-1]),
             node("Sub", ["x32", "mean"], "d"), node("Pow", ["d", "two"], "sq"),
             node("ReduceMean", ["sq"], "var", axes=[-1]), node("Add", ["var", "eps"], "ve"),
             node("Sqrt", ["ve"], "std"), node("Div", ["d", "std"], "n"), node("Cast", ["n"], "n16", to=F16),
             node("Mul", ["n16", "gamma"], "g"), node("Add", ["g", "beta"], "y")]
    model = make_model(nodes, {"x": ((2, 5, 8), F16)}, ["y"], inits)
    out, result = fused(model)
    assert result.changed == 1 and ops(out) == ["LayerNormalization"]
    assert ln_node(out).input[0] == "x"
    assert_same(model, out, atol=2e-3, rtol=2e-3)


def test_torch_fp16_spelling_with_cast_of_the_deviation() -> None:
    inits = {"two": const(2.0), "eps": const(1e-5), "gamma": rand((8,), 2, np.float16), "beta": rand((8,), 3, np.float16)}
    nodes = [node("ReduceMean", ["x"], "mean", axes=[-1]), node("Sub", ["x", "mean"], "d16"),
             node("Cast", ["d16"], "d", to=F32), node("Pow", ["d", "two"], "sq"),
             node("ReduceMean", ["sq"], "var", axes=[-1]), node("Add", ["var", "eps"], "ve"),
             node("Sqrt", ["ve"], "std"), node("Div", ["d", "std"], "n"), node("Cast", ["n"], "n16", to=F16),
             node("Mul", ["n16", "gamma"], "g"), node("Add", ["g", "beta"], "y")]
    model = make_model(nodes, {"x": ((2, 5, 8), F16)}, ["y"], inits)
    out, _ = fused(model)
    assert ops(out) == ["LayerNormalization"]
    assert_same(model, out, atol=1e-2, rtol=1e-2)


def test_instance_norm_spelling_with_one_group() -> None:
    inits = {"to3": np.asarray([0, 1, -1], np.int64), "back": np.asarray([2, 3, 3, 4], np.int64),
             "one": const([1.0]), "zero": const([0.0]), "gamma": rand((4,), 2), "beta": rand((4,), 3)}
    nodes = [node("Reshape", ["x", "to3"], "r"), node("InstanceNormalization", ["r", "one", "zero"], "i", epsilon=1e-3),
             node("Reshape", ["i", "back"], "b"), node("Mul", ["b", "gamma"], "g"), node("Add", ["g", "beta"], "y")]
    model = make_model(nodes, {"x": ((2, 3, 3, 4), F32)}, ["y"], inits)
    out, result = fused(model)
    assert result.changed == 1 and ops(out) == ["LayerNormalization"]
    assert_same(model, out, atol=1e-5)
    assert_idempotent(out)


def test_channel_axis_of_nchw_is_moved_last_with_transposes() -> None:
    model = decomposed_ln(shape=(2, 4, 3, 3), axes=(1,), gamma_shape=(1, 4, 1, 1), affine="scale")
    out, result = fused(model)
    assert result.changed == 1 and ops(out) == ["LayerNormalization", "Transpose", "Transpose"]
    assert_same(model, out, atol=1e-5)
    assert_idempotent(out)


def test_the_tensors_a_channel_fusion_adds_come_with_their_shapes() -> None:
    # Set by the rewrite, so the manager's local inference (0.08 ms a node) has nothing to do for them.
    import onnx_graphsurgeon as gs

    from onnxmend.core.graph import infer_shapes
    from tests.builders import context

    model = infer_shapes(decomposed_ln(shape=(2, 4, 3, 5), axes=(1,), gamma_shape=(1, 4, 1, 1), affine="both"))
    graph = gs.import_onnx(model)
    assert FuseLayerNorm().apply(graph, context(model)).changed == 1
    new = [n for n in graph.nodes if n.op in ("Transpose", "LayerNormalization")]
    assert [(n.op, n.outputs[0].shape) for n in new] == [
        ("Transpose", [2, 3, 5, 4]), ("LayerNormalization", [2, 3, 5, 4]), ("Transpose", [2, 4, 3, 5])]
    assert all(n.outputs[0].dtype == np.float32 for n in new)


def test_pinned_layout_leaves_a_channel_norm_that_needs_a_transpose_pair_decomposed() -> None:
    model = decomposed_ln(shape=(2, 4, 3, 3), axes=(1,), gamma_shape=(1, 4, 1, 1), affine="scale")
    out, result = fused(model, fusions_may_transpose=False)
    assert result.changed == 0 and "Transpose" not in ops(out) and ops(out) == ops(model)
    (skip,) = result.skipped
    assert re.search(r"axes \[1\] of a rank-4 tensor needs a Transpose pair, and the pinned layout", skip.reason)


def test_pinned_layout_still_fuses_trailing_axes() -> None:
    model = decomposed_ln(shape=(2, 5, 8), axes=(-1,), gamma_shape=(8,), affine="both")
    out, result = fused(model, fusions_may_transpose=False)
    assert result.changed == 1 and ops(out) == ["LayerNormalization"]


def test_pinned_layout_fuses_a_channel_norm_already_between_inverse_transposes() -> None:
    # NCHW → Transpose → [norm over C, written on NCHW after a second Transpose back] → Transpose: the
    # fusion reuses the pair, so it adds nothing and a pinned layout allows it.
    model = decomposed_ln(shape=(2, 4, 3, 3), axes=(1,), gamma_shape=(1, 4, 1, 1), affine="scale")
    graph = model.graph
    x = graph.input[0]
    graph.node.insert(0, node("Transpose", ["x_nhwc"], "x_nchw", perm=[0, 3, 1, 2]))
    for n in graph.node[1:]:
        n.input[:] = ["x_nchw" if i == "x" else i for i in n.input]
    x.name = "x_nhwc"
    dims = x.type.tensor_type.shape.dim
    shape = [d.dim_value for d in dims]
    for d, v in zip(dims, [shape[0], shape[2], shape[3], shape[1]]):
        d.dim_value = v
    graph.node.append(node("Transpose", [graph.output[0].name], "y_nhwc", perm=[0, 2, 3, 1]))
    graph.output[0].CopyFrom(x)
    graph.output[0].name = "y_nhwc"
    out, result = fused(model, fusions_may_transpose=False)
    assert result.changed == 1 and ops(out) == ["LayerNormalization"]
    assert_same(model, out, atol=1e-5)


def test_channel_axis_transpose_cancels_against_a_following_inverse_transpose() -> None:
    model = tf_folded_ln(shape=(2, 4, 3, 3), axes=(1,), gamma_shape=(1, 4, 1, 1))
    graph = model.graph
    graph.node.append(node("Transpose", ["y"], "nhwc", perm=[0, 2, 3, 1]))
    graph.output[0].name = "nhwc"
    graph.output[0].type.tensor_type.ClearField("shape")
    out, _ = fused(onnx.shape_inference.infer_shapes(model))
    assert ops(out) == ["LayerNormalization", "Transpose"]
    assert_same(model, out, atol=1e-5)
