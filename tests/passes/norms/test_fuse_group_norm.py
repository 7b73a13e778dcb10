"""fuse-group-norm: torch's GroupNorm exports (both exporters), the ReduceMean spelling after fuse-layer-norm,
and the must-not-fire cases (opset below 21, an affine that is not per-channel)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from onnx import TensorProto

from onnxmend.passes.norms.fuse_group_norm import FuseGroupNorm
from onnxmend.passes.norms.fuse_layer_norm import FuseLayerNorm
from tests.builders import apply, assert_same, const, make_model, node, ops, rand
from tests.builders.norms import converted_to, torch_export

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("dynamo", [False, True])
@pytest.mark.parametrize("groups", [1, 2])
def test_torch_group_norm(dynamo: bool, groups: int) -> None:
    raw = torch_export(torch.nn.GroupNorm(groups, 8), (2, 8, 5, 5), 18 if dynamo else 17, dynamo=dynamo)
    model = converted_to(raw, 21)
    out, _ = apply(model, FuseLayerNorm())
    out, _ = apply(out, FuseGroupNorm())
    assert ops(out) == (["LayerNormalization"] if groups == 1 else ["GroupNormalization"])
    assert_same(model, out, atol=1e-5)
    assert apply(out, FuseGroupNorm())[1].changed == 0


def test_group_norm_below_opset_21_is_left_with_reason() -> None:
    model = torch_export(torch.nn.GroupNorm(2, 8), (2, 8, 5, 5), 18, dynamo=True)
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
