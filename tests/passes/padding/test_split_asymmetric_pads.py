"""split-asymmetric-pads (portable preset): asymmetric pads become one Pad plus symmetric pads."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper, numpy_helper

from onnxmend.core.graph import op_histogram
from onnxmend.passes.padding.split_asymmetric_pads import SplitAsymmetricPads
from onnxmend.runtime.inspect import inspect_model
from tests.builders.padding import (
    assert_exact_and_idempotent,
    assert_skipped,
    attr,
    changed,
    find_node,
    pipeline,
    weight,
    x_model,
)


@pytest.mark.parametrize("op,attrs,fill", [
    ("Conv", {}, 0.0),
    ("MaxPool", {}, -np.inf),
    ("AveragePool", {"count_include_pad": 1}, 0.0),
])
def test_split_asymmetric_pads(op, attrs, fill):
    shape = [1, 3, 9, 9]
    inputs = ["x", "w"] if op == "Conv" else ["x"]
    consumer = helper.make_node(op, inputs, ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 2, 1], **attrs)
    model = x_model([consumer], shape, [weight("w", [4, 3, 3, 3])] if op == "Conv" else [])
    out, report = pipeline(model, SplitAsymmetricPads(), preset="portable")
    assert op_histogram(out) == {"Pad": 1, op: 1}
    assert list(attr(find_node(out, op), "pads")) == [1, 0, 1, 0]
    pad = find_node(out, "Pad")
    inits = {t.name: numpy_helper.to_array(t) for t in out.graph.initializer}
    assert inits[pad.input[1]].tolist() == [0, 0, 0, 0, 0, 0, 1, 1]
    assert float(inits[pad.input[2]]) == fill
    assert "asymmetric_pads" not in {f.key for f in inspect_model(out).findings}
    assert_exact_and_idempotent(model, out, shape, SplitAsymmetricPads(), preset="portable")


@pytest.mark.parametrize("op,attrs,pattern", [
    ("AveragePool", {"pads": [0, 0, 1, 1]}, r"count_include_pad=0 would count"),
    ("MaxPool", {"pads": [0, 0, 1, 1], "ceil_mode": 1}, r"ceil_mode=1"),
    ("ConvTranspose", {"pads": [0, 0, 1, 1]}, r"ConvTranspose pads crop its output"),
    ("MaxPool", {"auto_pad": "SAME_UPPER"}, r"resolve-auto-pad runs first"),
])
def test_split_asymmetric_pads_must_not_fire(op, attrs, pattern):
    inputs = ["x", "w"] if op == "ConvTranspose" else ["x"]
    consumer = helper.make_node(op, inputs, ["y"], kernel_shape=[3, 3], **attrs)
    model = x_model([consumer], [1, 3, 8, 8], [weight("w", [3, 4, 3, 3])] if op == "ConvTranspose" else [])
    _, report = pipeline(model, SplitAsymmetricPads(), preset="portable")
    assert changed(report) == 0
    assert_skipped(report, "split-asymmetric-pads", pattern)
