"""norm_epsilons and fuse-layer-norm candidates: every epsilon listed, framework defaults flagged, candidates counted."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from onnxmend.passes.norms.epsilons import norm_epsilons
from onnxmend.passes.norms.fuse_layer_norm import FuseLayerNorm
from tests.builders import candidates, make_model, node, rand
from tests.builders.norms import decomposed_ln


def bn_model(eps: float):
    inits = {k: rand((4,), i) for i, k in enumerate("gbm")}
    inits["v"] = np.abs(rand((4,), 5)) + 0.5
    return make_model([node("BatchNormalization", ["x", "g", "b", "m", "v"], "y", epsilon=eps)],
                      {"x": ((1, 4, 3, 3), TensorProto.FLOAT)}, ["y"], inits)


def test_keras_bn_epsilon_is_flagged_for_torch_source() -> None:
    (row,) = norm_epsilons(bn_model(1e-3), "torch")
    assert row["op"] == "BatchNormalization" and row["differs"] and row["framework_default"] == 1e-5
    assert "it is the keras default" in row["note"]
    assert not norm_epsilons(bn_model(1e-3), "keras")[0]["differs"]
    assert not norm_epsilons(bn_model(1e-3), "onnx")[0]["differs"]


def test_decomposed_layer_norm_epsilon_is_read() -> None:
    (row,) = norm_epsilons(decomposed_ln(eps=1e-12), "torch")
    assert row["op"] == "decomposed LayerNorm" and row["differs"]
    assert abs(row["epsilon"] - 1e-12) < 1e-15 and "common transformer value" in row["note"]


def test_inspect_counts_fuse_layer_norm_candidates_with_the_pass_matcher() -> None:
    found = candidates(decomposed_ln(shape=(2, 4, 3, 3), axes=(1, 3), affine="none"), FuseLayerNorm())
    assert found.count == 0
    assert [s.reason for s in found.skipped] == ["axes (-3, -1) are not a contiguous set"]
    found = candidates(decomposed_ln(), FuseLayerNorm())
    assert found.count == 1 and found.skipped == []
    assert [f"{row['epsilon']:g}" for row in norm_epsilons(decomposed_ln(), "onnx")] == ["1e-05"]
