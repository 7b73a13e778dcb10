"""remove-identity (with the cleanup preset around it): Identity and inference Dropout go; graph-output
Identities and used Dropout masks stay, with their reasons."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import helper

from onnxmend.core.graph import op_histogram
from onnxmend.passes.cleanup.remove_identity import RemoveIdentity
from onnxmend.passes.infra.catalogue import resolve
from tests.builders import conv_relu_model, make_model, run, run_passes, value

CLEANUP = "remove-identity,fold-constants,dedupe-initializers,eliminate-dead-nodes"


def test_cleanup_passes_remove_identity_dropout_and_dead_nodes_exactly():
    model = conv_relu_model()
    fixed, report = run_passes(model, resolve(None, CLEANUP))
    assert op_histogram(fixed) == {"Conv": 1, "Add": 1, "Relu": 1}
    onnx.checker.check_model(fixed)
    feeds = {"x": np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)}
    np.testing.assert_array_equal(run(model, feeds)[0], run(fixed, feeds)[0])
    applied = {r.name: r for r in report.records}
    # The manager sweeps dead nodes after every pass that changed something, so the dead Constant goes too.
    assert applied["remove-identity"].deltas == {"Constant": (1, 0), "Dropout": (1, 0), "Identity": (1, 0)}
    assert "Identity -1 (1→0)" in applied["remove-identity"].delta_text()
    again, second = run_passes(fixed, resolve(None, CLEANUP))
    assert second.records == [] and op_histogram(again) == op_histogram(fixed)


def test_remove_identity_must_not_fire_on_graph_input_to_output():
    model = make_model([helper.make_node("Identity", ["x"], ["y"])], [value("x", [2])], [value("y", [2])])
    fixed, report = run_passes(model, [RemoveIdentity()])
    assert op_histogram(fixed) == {"Identity": 1}
    assert any("graph input" in s.reason for s in report.skipped["remove-identity"])


def test_dropout_with_used_mask_is_kept_with_reason():
    nodes = [helper.make_node("Dropout", ["x"], ["y", "mask"])]
    model = make_model(nodes, [value("x", [2])], [value("y", [2]), value("mask", [2], onnx.TensorProto.BOOL)])
    fixed, report = run_passes(model, [RemoveIdentity()])
    assert op_histogram(fixed) == {"Dropout": 1}
    assert report.skipped["remove-identity"][0].reason == "the Dropout mask output is used"
