"""Tensor layouts relative to the source: recorded interface, port matching, Transposes; arrays brought back."""

from __future__ import annotations

import numpy as np
from onnx import TensorProto

from onnxmend.core.interface import write_interface
from onnxmend.runtime.layers.layout import input_perms, tensor_info, tensor_perms, to_frame
from tests.builders import make_model, node, transpose

F32 = TensorProto.FLOAT


def nchw_graph():
    """x (NCHW) → Relu → Transpose(NHWC) → Relu → Reshape to 2-D."""
    nodes = [node("Relu", ["x"], "a"), transpose("a", "b", [0, 2, 3, 1]), node("Relu", ["b"], "c"),
             node("Reshape", ["c", "shape"], "y")]
    return make_model(nodes, {"x": ((1, 3, 4, 5), F32)}, ["y"], {"shape": np.asarray([1, -1], np.int64)})


def test_a_recorded_io_layout_makes_every_nchw_tensor_the_nhwc_source_transposed() -> None:
    model = nchw_graph()
    write_interface(model, {"x": {"kind": "input", "perm": [0, 3, 1, 2], "was": "NHWC", "now": "NCHW"}})
    perms = tensor_perms(model, input_perms(model))
    assert perms["x"] == perms["a"] == (0, 3, 1, 2)
    assert perms["b"] == perms["c"] == (0, 1, 2, 3)  # the Transpose brings it back to the source's NHWC
    assert "y" not in perms  # a rank change loses the layout


def test_a_ports_matched_perm_starts_the_propagation() -> None:
    model = nchw_graph()
    perms = tensor_perms(model, input_perms(model, {"x": (0, 3, 1, 2)}))
    assert perms["a"] == (0, 3, 1, 2)
    assert tensor_perms(model, input_perms(model))["a"] == (0, 1, 2, 3)


def test_tensor_info_gives_ranks_and_bytes() -> None:
    info = tensor_info(nchw_graph())
    assert info["a"] == (4, 3 * 4 * 5 * 4) and info["y"][0] == 2


def test_to_frame_undoes_the_perm_or_falls_back_on_the_shape() -> None:
    source = np.random.default_rng(0).standard_normal((1, 4, 5, 3)).astype(np.float32)  # NHWC
    onnx_value = source.transpose(0, 3, 1, 2)
    np.testing.assert_array_equal(to_frame(onnx_value, (0, 3, 1, 2)), source)
    np.testing.assert_array_equal(to_frame(onnx_value, None, source.shape), source)
    square = np.zeros((1, 2, 2, 2), np.float32)
    assert to_frame(square, None, square.shape) is square  # identity first when the shape cannot tell
