"""decompose-norms: each norm op → primitives, and the fuse → decompose round trip back to opset 13."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, version_converter

from onnxmend.passes.norms.decompose_norms import DecomposeNorms
from onnxmend.passes.norms.fuse_layer_norm import FuseLayerNorm
from tests.builders import apply, assert_same, make_model, node, ops, rand, run, seeded_feeds
from tests.builders.norms import decomposed_ln

F32, F16 = TensorProto.FLOAT, TensorProto.FLOAT16
PRIMITIVES = {"ReduceMean", "Sub", "Mul", "Add", "Sqrt", "Div", "Reshape", "Shape", "Cast"}


@pytest.mark.parametrize("opset", [17, 18])
def test_layer_norm(opset: int) -> None:
    inits = {"g": rand((3, 4), 1), "b": rand((3, 4), 2)}
    model = make_model([node("LayerNormalization", ["x", "g", "b"], "y", axis=-2, epsilon=1e-3)],
                       {"x": ((2, 5, 3, 4), F32)}, ["y"], inits, opset=opset)
    out, result = apply(model, DecomposeNorms())
    assert result.changed == 1 and set(ops(out)) <= PRIMITIVES
    reduce = [n for n in out.graph.node if n.op_type == "ReduceMean"]
    assert len(reduce) == 2 and all((len(n.input) == 2) == (opset >= 18) for n in reduce)
    assert_same(model, out, atol=1e-5)
    assert apply(out, DecomposeNorms())[1].changed == 0


def test_layer_norm_whose_mean_is_a_graph_output_is_left_alone() -> None:
    # ONNX's backend test layer_normalization_2d_axis0 returns Mean and InvStdDev as graph outputs;
    # decomposing dropped them (the checker refused the rewrite).
    inits = {"g": rand((3, 4), 1), "b": rand((3, 4), 2)}
    model = make_model([node("LayerNormalization", ["x", "g", "b"], ["y", "mean", "inv_std"], axis=0)],
                       {"x": ((3, 4), F32)}, ["y", "mean", "inv_std"], inits)
    out, result = apply(model, DecomposeNorms())
    assert result.changed == 0 and ops(out) == ["LayerNormalization"]
    assert [s.reason for s in result.skipped] == ["its Mean/InvStdDev outputs are in use"]


def test_fp16_layer_norm_keeps_float32_statistics() -> None:
    inits = {"g": rand((8,), 1, np.float16)}
    model = make_model([node("LayerNormalization", ["x", "g"], "y", epsilon=1e-5)], {"x": ((2, 8), F16)}, ["y"], inits)
    out, _ = apply(model, DecomposeNorms())
    assert ops(out).count("Cast") == 2
    assert_same(model, out, atol=2e-3, rtol=2e-3)


def test_instance_norm() -> None:
    inits = {"g": rand((4,), 1), "b": rand((4,), 2)}
    model = make_model([node("InstanceNormalization", ["x", "g", "b"], "y", epsilon=1e-5)],
                       {"x": ((2, 4, 5, 5), F32)}, ["y"], inits, opset=13)
    out, _ = apply(model, DecomposeNorms())
    assert set(ops(out)) <= PRIMITIVES
    assert_same(model, out, atol=1e-5)


@pytest.mark.parametrize("opset", [18, 21])
def test_group_norm_per_channel_and_per_group_semantics(opset: int) -> None:
    n = 8 if opset >= 21 else 2
    inits = {"g": rand((n,), 1), "b": rand((n,), 2)}
    model = make_model([node("GroupNormalization", ["x", "g", "b"], "y", epsilon=1e-5, num_groups=2)],
                       {"x": ((2, 8, 3, 3), F32)}, ["y"], inits, opset=opset, check=opset >= 21)
    out, _ = apply(model, DecomposeNorms())
    assert set(ops(out)) <= PRIMITIVES
    feeds = seeded_feeds(model)
    x = feeds["x"].astype(np.float64).reshape(2, 2, -1)
    ref = ((x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5))
    if opset >= 21:
        ref = ref.reshape(2, 8, 3, 3) * inits["g"].reshape(8, 1, 1) + inits["b"].reshape(8, 1, 1)
    else:
        ref = (ref * inits["g"].reshape(2, 1) + inits["b"].reshape(2, 1)).reshape(2, 8, 3, 3)
    np.testing.assert_allclose(run(out, feeds)[0], ref, atol=1e-5)


def test_fuse_then_decompose_round_trip_loads_at_opset_13() -> None:
    original = decomposed_ln(shape=(2, 4, 3, 3), axes=(-3, -2, -1), opset=13)
    at17 = version_converter.convert_version(original, 17)
    fused, fuse_result = apply(at17, FuseLayerNorm())
    assert fuse_result.changed == 1 and ops(fused) == ["LayerNormalization"]
    decomposed, _ = apply(fused, DecomposeNorms())
    # onnx cannot convert Sub/Add down from 14; every op left is unchanged between 13 and 17, which the
    # full checker proves against the opset-13 schemas.
    back = onnx.ModelProto.FromString(decomposed.SerializeToString())
    back.opset_import[0].version = 13
    onnx.checker.check_model(back, full_check=True)
    assert back.opset_import[0].version == 13
    assert "LayerNormalization" not in ops(back)
    assert_same(original, back, atol=1e-6, rtol=1e-6)
