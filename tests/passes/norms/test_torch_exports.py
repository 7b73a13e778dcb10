"""Norm fusions on real torch exporter output (legacy TorchScript and dynamo) plus the GroupNorm spellings."""

from __future__ import annotations

import io
import re
import warnings

import numpy as np
import onnx
import pytest
from onnx import TensorProto, version_converter

from onnxmend.passes.norms.fuse_group_norm import FuseGroupNorm
from onnxmend.passes.norms.fuse_layer_norm import FuseLayerNorm
from tests.builders import apply, assert_same, const, make_model, node, ops, rand

torch = pytest.importorskip("torch")


def export(module, shape: tuple[int, ...], opset: int, dynamo: bool) -> onnx.ModelProto:
    torch.manual_seed(0)
    for p in module.parameters():
        torch.nn.init.normal_(p, 0.5, 0.3)
    x = torch.randn(*shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            return torch.onnx.export(module.eval(), (x,), dynamo=True, opset_version=opset, verbose=False).model_proto
        buffer = io.BytesIO()
        torch.onnx.export(module.eval(), (x,), buffer, dynamo=False, opset_version=opset)
    return onnx.load_from_string(buffer.getvalue())


def at_opset(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    return onnx.shape_inference.infer_shapes(version_converter.convert_version(model, opset))


@pytest.mark.parametrize("normalized, opset", [((6,), 13), ((4, 5, 6), 16)])
def test_legacy_layer_norm(normalized: tuple[int, ...], opset: int) -> None:
    model = at_opset(export(torch.nn.LayerNorm(list(normalized)), (2, 4, 5, 6), opset, dynamo=False), 17)
    assert "LayerNormalization" not in ops(model)
    out, result = apply(model, FuseLayerNorm())
    assert result.changed == 1 and ops(out) == ["LayerNormalization"]
    assert_same(model, out, atol=1e-5)


def test_dynamo_layer_norm_is_already_fused() -> None:
    model = export(torch.nn.LayerNorm([6]), (2, 4, 6), 18, dynamo=True)
    out, result = apply(model, FuseLayerNorm())
    assert result.changed == 0 and ops(out) == ["LayerNormalization"]


@pytest.mark.parametrize("dynamo", [False, True])
@pytest.mark.parametrize("groups", [1, 2])
def test_torch_group_norm(dynamo: bool, groups: int) -> None:
    raw = export(torch.nn.GroupNorm(groups, 8), (2, 8, 5, 5), 18 if dynamo else 17, dynamo=dynamo)
    model = at_opset(raw, 21)
    out, _ = apply(model, FuseLayerNorm())
    out, _ = apply(out, FuseGroupNorm())
    assert ops(out) == (["LayerNormalization"] if groups == 1 else ["GroupNormalization"])
    assert_same(model, out, atol=1e-5)
    assert apply(out, FuseGroupNorm())[1].changed == 0


def test_group_norm_below_opset_21_is_left_with_reason() -> None:
    model = export(torch.nn.GroupNorm(2, 8), (2, 8, 5, 5), 18, dynamo=True)
    out, result = apply(model, FuseGroupNorm())
    assert result.changed == 0 and "InstanceNormalization" in ops(out)
    assert re.search(r"needs opset 21 \(per-channel scale\); the graph is at 18", result.skipped[0].reason)


def test_reduce_mean_group_norm_spelling_after_fuse_layer_norm() -> None:
    inits = {"to3": np.asarray([0, 2, -1], np.int64), "two": const(2.0), "eps": const(1e-5), "last": np.asarray([-1]),
             "gamma": rand((8, 1, 1), 2), "beta": rand((8, 1, 1), 3)}
    nodes = [node("Reshape", ["x", "to3"], "r"), node("ReduceMean", ["r", "last"], "m"), node("Sub", ["r", "m"], "d"),
             node("Pow", ["d", "two"], "sq"), node("ReduceMean", ["sq", "last"], "v"), node("Add", ["v", "eps"], "ve"),
             node("Sqrt", ["ve"], "s"), node("Div", ["d", "s"], "n"), node("Shape", ["x"], "shape"),
             node("Reshape", ["n", "shape"], "back"), node("Mul", ["back", "gamma"], "g"), node("Add", ["g", "beta"], "y")]
    model = make_model(nodes, {"x": ((2, 8, 3, 3), TensorProto.FLOAT)}, ["y"], inits, opset=21)
    out, _ = apply(model, FuseLayerNorm())
    out, result = apply(out, FuseGroupNorm())
    assert result.changed == 1 and ops(out) == ["GroupNormalization"]
    assert_same(model, out, atol=1e-5)


def test_group_norm_with_non_channel_affine_is_rejected() -> None:
    inits = {"to3": np.asarray([0, 2, -1], np.int64), "back": np.asarray([2, 8, 3, 3], np.int64),
             "one": const([1.0, 1.0]), "zero": const([0.0, 0.0]), "gamma": rand((3, 1), 2)}
    nodes = [node("Reshape", ["x", "to3"], "r"), node("InstanceNormalization", ["r", "one", "zero"], "i"),
             node("Reshape", ["i", "back"], "b"), node("Mul", ["b", "gamma"], "y")]
    model = make_model(nodes, {"x": ((2, 8, 3, 3), TensorProto.FLOAT)}, ["y"], inits, opset=21)
    out, result = apply(model, FuseGroupNorm())
    assert result.changed == 0
    assert re.search(r"shape \(3, 1\) is not per-channel", result.skipped[0].reason)
