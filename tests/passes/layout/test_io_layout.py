"""push-transposes and io-layout: one test per handler, broadcasting, sharing, boundaries, idempotence."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import helper

from onnxmend.core.interface import read_interface
from onnxmend.passes.infra.base import PassContext
from onnxmend.passes.layout.findings import transpose_findings as inspect_layout
from onnxmend.passes.layout.io_layout import IoLayout
from onnxmend.passes.layout.push_transposes import PushTransposes
from tests.builders import apply, init, make_model, run_passes, transpose, value
from tests.builders.layout import TO_NCHW, TO_NHWC, X, Y

RNG = np.random.default_rng(7)


def nhwc_conv_model(preprocess: bool) -> onnx.ModelProto:
    pre = [helper.make_node("Mul", ["x", "scale"], ["xs"]), helper.make_node("Add", ["xs", "shift"], ["xp"])]
    src = "xp" if preprocess else "x"
    nodes = [*(pre if preprocess else []), transpose(src, "t", TO_NCHW), helper.make_node("Conv", ["t", "w"], ["c"]),
             helper.make_node("Relu", ["c"], ["r"]), transpose("r", "y", TO_NHWC)]
    inits = [init("w", RNG.standard_normal([6, 3, 1, 1]).astype(np.float32)),
             init("scale", np.float32([[[[0.5, 1.0, 2.0]]]])), init("shift", np.float32([1.0, 2.0, 3.0]))]
    return make_model(nodes, [value("x", Y)], [value("y", [2, 4, 5, 6])], inits)


@pytest.mark.parametrize("preprocess", [False, True])
def test_io_layout_nchw_removes_boundary_transposes_and_records_the_interface(preprocess):
    m = nhwc_conv_model(preprocess)
    out, report = run_passes(m, [IoLayout(), PushTransposes()], PassContext(opset=17, layout="nchw"), verify=True)
    assert not report.rejected and "Transpose" not in report.ops_after
    assert read_interface(out) == {
        "x": {"kind": "input", "perm": [0, 3, 1, 2], "was": "NHWC", "now": "NCHW"},
        "y": {"kind": "output", "perm": [0, 3, 1, 2], "was": "NHWC", "now": "NCHW"},
    }
    assert [d.dim_value for d in out.graph.input[0].type.tensor_type.shape.dim] == [2, 3, 4, 5]
    assert [d.dim_value for d in out.graph.output[0].type.tensor_type.shape.dim] == [2, 6, 4, 5]


def test_io_layout_keep_changes_nothing_and_push_leaves_one_transpose_per_boundary():
    m = nhwc_conv_model(preprocess=True)
    out, report = run_passes(m, [IoLayout(), PushTransposes()], PassContext(opset=17, layout="keep"))
    assert report.ops_after["Transpose"] == 2 and not read_interface(out)
    info = inspect_layout(out)
    assert info["at_outputs"] == 1


def test_io_layout_skips_inputs_it_cannot_prove_nhwc():
    m = make_model([helper.make_node("Conv", ["x", "w"], ["y"])], [value("x", X)], [value("y", [2, 6, 4, 5])],
              [init("w", np.ones([6, 3, 1, 1], np.float32))])
    out, result = apply(m, IoLayout(), layout="nchw")
    assert result.changed == 0 and not result.interface
    assert any("not known to be NHWC" in s.reason for s in result.skipped)
