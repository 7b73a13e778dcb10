"""Matching a port's interface to its source's: by name or position, layouts by shape, one sentence when
they cannot be matched; outputs renamed and transposed back."""

from __future__ import annotations

import numpy as np
import pytest

from onnxmend.core.errors import OnnxmendError
from onnxmend.core.specs import TensorSpec
from onnxmend.runtime.runners.matching import match_inputs, restore_outputs

NHWC = TensorSpec("x", (1, 32, 32, 3), layout="NHWC")


def test_an_nhwc_source_feeds_an_nchw_port_by_name() -> None:
    match = match_inputs([NHWC], [TensorSpec("x", (1, 3, 32, 32))])
    assert match.by == "name" and match.inputs[0].perm == (0, 3, 1, 2) and not match.identity
    x = np.zeros((1, 32, 32, 3), np.float32)
    assert match.adapt({"x": x})["x"].shape == (1, 3, 32, 32)


def test_names_that_differ_match_by_position_and_same_shapes_need_no_perm() -> None:
    match = match_inputs([TensorSpec("input_1", (1, 8))], [TensorSpec("x", (1, 8))])
    assert match.by == "position" and match.inputs[0].perm is None
    assert match.adapt({"input_1": np.ones((1, 8))}).keys() == {"x"}


def test_a_square_input_of_a_torch_model_is_taken_as_nchw() -> None:
    square = TensorSpec("x", (1, 8, 8, 8), layout="NHWC")
    assert match_inputs([square], [TensorSpec("x", (1, 8, 8, 8))], nchw_model=True).inputs[0].perm == (0, 3, 1, 2)
    assert match_inputs([square], [TensorSpec("x", (1, 8, 8, 8))]).inputs[0].perm is None


def test_interfaces_that_cannot_match_are_one_sentence() -> None:
    with pytest.raises(OnnxmendError, match=r"takes 1 input\(s\) and the model 2"):
        match_inputs([NHWC], [TensorSpec("a", (1,)), TensorSpec("b", (1,))])
    with pytest.raises(OnnxmendError, match=r"Source input x 1x32x32x3 matches no layout of model input x 1x3x16x16"):
        match_inputs([NHWC], [TensorSpec("x", (1, 3, 16, 16))])


def test_outputs_come_back_in_the_source_layout_and_names() -> None:
    nchw = np.arange(2 * 3 * 4 * 5, dtype=np.float32).reshape(2, 3, 4, 5)
    restored = restore_outputs({"out": nchw}, ["conv2"], [(2, 4, 5, 3)], (0, 3, 1, 2))
    np.testing.assert_array_equal(restored["conv2"], nchw.transpose(0, 2, 3, 1))
    with pytest.raises(OnnxmendError, match=r"source has 2 output\(s\) and the model 1"):
        restore_outputs({"out": nchw}, ["a", "b"], [None, None], None)
