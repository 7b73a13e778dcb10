"""core.graph.infer_shapes: with onnx's data propagation, and without it where propagation refuses a valid
graph (onnx 1.23 propagates an Unsqueeze of a constant Range as if it were still 1-D)."""

from __future__ import annotations

import onnx
import pytest
from onnx import TensorProto, helper

from onnxmend.core.graph import infer_shapes


def _window_model() -> onnx.ModelProto:
    """rows[4,1] - cols[1,6] from two constant Ranges: what fold-shape-chains leaves of ONNX's expanded
    local-window attention once the sequence lengths are static."""
    scalar = lambda name, v: helper.make_tensor(name, TensorProto.INT64, [], [v])  # noqa: E731
    axes = lambda name, v: helper.make_tensor(name, TensorProto.INT64, [1], [v])  # noqa: E731
    nodes = [helper.make_node("Range", ["zero", "four", "one"], ["r"]),
             helper.make_node("Range", ["zero", "six", "one"], ["c"]),
             helper.make_node("Unsqueeze", ["r", "ax1"], ["r2"]),
             helper.make_node("Unsqueeze", ["c", "ax0"], ["c2"]),
             helper.make_node("Sub", ["r2", "c2"], ["d"])]
    inits = [scalar("zero", 0), scalar("four", 4), scalar("six", 6), scalar("one", 1), axes("ax1", 1), axes("ax0", 0)]
    graph = helper.make_graph(nodes, "window", [], [helper.make_tensor_value_info("d", TensorProto.INT64, None)], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])


def test_data_propagation_refusing_a_valid_broadcast_does_not_fail_strict_inference() -> None:
    model = _window_model()
    with pytest.raises(Exception, match="broadcasting"):  # the onnx behaviour this guards against
        onnx.shape_inference.infer_shapes(model, strict_mode=True, data_prop=True)
    inferred = infer_shapes(model, strict=True)
    dims = [d.dim_value for d in inferred.graph.output[0].type.tensor_type.shape.dim]
    assert dims == [4, 6]
    assert infer_shapes(model).graph.output[0].type.tensor_type.shape.dim[1].dim_value == 6  # lenient too


def test_an_invalid_graph_still_fails_strict_inference() -> None:
    model = _window_model()
    model.graph.node[4].op_type = "MatMul"  # [4,1] x [1,6] is fine; make it [4,1] x [4,1]
    model.graph.node[4].input[1] = "r2"
    with pytest.raises(Exception):
        infer_shapes(model, strict=True)
    assert isinstance(infer_shapes(model), onnx.ModelProto)  # lenient never raises
