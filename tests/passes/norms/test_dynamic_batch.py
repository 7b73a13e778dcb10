"""A dynamic batch keeps the fusions: tf2onnx's dynamic-batch spellings of a LayerNorm and of a Dense layer
on an NHWC tensor fuse as the static ones do, with exact op counts, and the batch stays dynamic."""

from __future__ import annotations

import re

import numpy as np
import pytest

from onnxmend.passes.infra.base import PassContext
from onnxmend.passes.infra.catalogue import resolve
from onnxmend.passes.norms.fuse_layer_norm import FuseLayerNorm
from tests.builders import apply, const, make_model, node, op_counts, ops, rand, run, run_passes

SHAPE = ("N", 4, 3, 3)


def channel_ln_with_reshaped_mean(target=(-1, 1, 3, 3)):
    """tf2onnx with a dynamic batch: the cancelled Transpose of the mean is Reshape(mean, [-1,1,H,W])."""
    inits = {"eps": const(1e-3), "target": np.asarray(target, np.int64), "gamma": rand((1, 4, 1, 1), seed=2)}
    nodes = [node("ReduceMean", ["x"], "mean", axes=[1]), node("Reshape", ["mean", "target"], "m"),
             node("Sub", ["x", "m"], "d"), node("Mul", ["d", "d"], "sq"), node("ReduceMean", ["sq"], "var", axes=[1]),
             node("Add", ["var", "eps"], "ve"), node("Sqrt", ["ve"], "std"), node("Div", ["d", "std"], "n"),
             node("Mul", ["n", "gamma"], "y")]
    return make_model(nodes, {"x": (SHAPE, 1)}, ["y"], inits)


def same_at_batches(before, after, batches=(1, 3)):
    for batch in batches:
        x = np.random.default_rng(batch).standard_normal((batch, 4, 3, 3)).astype(np.float32) * 2 + 0.5
        np.testing.assert_allclose(run(before, {"x": x})[0], run(after, {"x": x})[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("target", [(-1, 1, 3, 3), (0, 1, 3, 3), (0, 1, -1, 3)])
def test_the_mean_reshaped_to_its_own_shape_with_a_dynamic_batch_fuses(target):
    model = channel_ln_with_reshaped_mean(target)
    out, result = apply(model, FuseLayerNorm())
    assert result.changed == 1 and ops(out) == ["LayerNormalization", "Transpose", "Transpose"]
    assert out.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "N"
    same_at_batches(model, out)
    assert apply(out, FuseLayerNorm())[1].changed == 0


@pytest.mark.parametrize("target", [(1, -1, 3, 3), (1, -1, 1, 1)])
def test_a_reshape_that_may_move_the_batch_is_no_mean_of_x(target):
    """[1,-1,H,W] moves the batch to the channel axis: the same as the mean only when N = 1."""
    inits = {"target": np.asarray(target, np.int64)}
    nodes = [node("ReduceMean", ["x"], "mean", axes=[1]), node("Reshape", ["mean", "target"], "m"),
             node("Sub", ["x", "m"], "d"), node("Mul", ["d", "d"], "y")]
    out, result = apply(make_model(nodes, {"x": (SHAPE, 1)}, ["y"], inits), FuseLayerNorm())
    assert result.changed == 0 and "LayerNormalization" not in ops(out)
    (skip,) = result.skipped
    assert re.search(r"^mean mean is not subtracted from x$", skip.reason)


keras = pytest.importorskip("keras", reason="TensorFlow/Keras is not installed")


def convnext_block():
    """LayerNormalization → Dense ×4 → GELU → Dense on an NHWC tensor, as ConvNeXt's blocks are."""
    keras.utils.set_random_seed(0)
    x = keras.Input((8, 8, 16), name="image")
    y = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    y = keras.layers.LayerNormalization(epsilon=1e-6)(y)
    y = keras.layers.Dense(64, activation="gelu")(y)
    y = keras.layers.Dense(16)(y)
    return keras.Model(x, keras.layers.Add()([x, y]))


@pytest.mark.parametrize("dynamic", [False, True])
def test_a_keras_convnext_block_fuses_the_same_with_and_without_a_dynamic_batch(dynamic):
    pytest.importorskip("tf2onnx", reason="tf2onnx is not installed")
    from onnxmend.exporters.keras.source import export_keras_model
    from onnxmend.exporters.options import ExportOptions

    raw = export_keras_model(convnext_block(), "block", ExportOptions(dynamic_batch=dynamic)).model
    ctx = PassContext(opset=17, layout="nchw", framework="keras")
    fixed, report = run_passes(raw, resolve("fix", None), ctx)
    assert not report.rejected and report.verified
    # The LayerNorm between its Transpose pair; x stays NHWC (the residual Add reads it directly, so
    # io-layout declines it): one Transpose after x, one before the Add.
    assert op_counts(fixed) == {"Conv": 3, "LayerNormalization": 1, "Transpose": 4, "Gelu": 1, "Add": 1}
    batch = fixed.graph.input[0].type.tensor_type.shape.dim[0]
    assert bool(batch.dim_param) is dynamic and (dynamic or batch.dim_value == 1)
