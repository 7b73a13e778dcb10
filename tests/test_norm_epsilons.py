"""norm_epsilons / inspect_norms: every epsilon listed, framework defaults flagged, candidates counted."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from norm_graphs import make_model, node, rand
from onnxmend.passes.norm_epsilons import inspect_norms, norm_epsilons
from test_passes_layer_norm import decomposed_ln


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


def test_inspect_counts_candidates_and_fused_norms() -> None:
    report = inspect_norms(decomposed_ln(shape=(2, 4, 3, 3), axes=(1, 3), affine="none"))
    assert report["decomposed_layer_norm"] == 0
    assert list(report["decomposed_not_fusable"]) == ["axes (-3, -1) are not a contiguous set"]
    report = inspect_norms(decomposed_ln())
    assert report == {"fused": {}, "decomposed_layer_norm": 1, "decomposed_not_fusable": {}, "epsilons": {"1e-05": 1}}
    assert inspect_norms(bn_model(1e-3))["fused"] == {"BatchNormalization": 1}
