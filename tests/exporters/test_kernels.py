"""Ops onnxruntime has no kernel for, found by reading the graph: TFLite leftovers, custom domains."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from onnxmend.core.errors import OnnxmendError
from onnxmend.exporters.kernels import check_runnable, unrunnable_ops


def model(*nodes: onnx.NodeProto, extra_opsets: tuple = ()) -> onnx.ModelProto:
    graph = helper.make_graph(list(nodes), "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (2,))],
                              [helper.make_tensor_value_info(nodes[-1].output[0], TensorProto.FLOAT, None)])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), *extra_opsets])


def test_tflite_leftovers_and_custom_ops_are_named_with_counts() -> None:
    m = model(
        helper.make_node("TFL_BUCKETIZE", ["x"], ["a"]),
        helper.make_node("TFL_BUCKETIZE", ["a"], ["b"]),
        helper.make_node("Convolution2DTransposeBias", ["b"], ["c"], domain="mediapipe"),
        helper.make_node("Relu", ["c"], ["y"]),
        extra_opsets=(helper.make_opsetid("mediapipe", 1),),
    )
    assert unrunnable_ops(m) == {"TFL_BUCKETIZE": 2, "mediapipe.Convolution2DTransposeBias": 1}
    with pytest.raises(OnnxmendError, match=r"^the export holds ops .*: TFL_BUCKETIZE x2, mediapipe\.Convolution2DTransposeBias x1;"):
        check_runnable(m, "the export")


def test_standard_and_onnxruntime_contrib_ops_pass() -> None:
    m = model(helper.make_node("Relu", ["x"], ["a"]),
              helper.make_node("FusedGemm", ["a", "a"], ["y"], domain="com.microsoft"),
              extra_opsets=(helper.make_opsetid("com.microsoft", 1),))
    assert unrunnable_ops(m) == {}
    check_runnable(m, "the export")
