"""resolve-auto-pad: SAME_UPPER/SAME_LOWER/VALID to explicit pads on Conv, pools and ConvTranspose."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper

from onnxmend.core.graph import op_histogram
from onnxmend.passes.padding.resolve_auto_pad import ResolveAutoPad
from tests.builders.padding import (
    assert_exact_and_idempotent,
    assert_skipped,
    attr,
    changed,
    feeds_for,
    find_node,
    ort,
    pipeline,
    weight,
    x_model,
)


def conv_model(x_shape, auto_pad, strides=(1, 1), dilations=(1, 1), k=3, opset=17):
    conv = helper.make_node("Conv", ["x", "w"], ["y"], auto_pad=auto_pad, strides=list(strides),
                            dilations=list(dilations))
    return x_model([conv], x_shape, [weight("w", [4, x_shape[1], k, k])], opset)


@pytest.mark.parametrize("auto_pad,size,expected", [
    ("SAME_UPPER", 15, [1, 1, 1, 1]),  # odd: total 2, split evenly
    ("SAME_UPPER", 16, [0, 0, 1, 1]),  # even: total 1, the odd pixel at the end
    ("SAME_LOWER", 16, [1, 1, 0, 0]),  # even: the odd pixel at the beginning
    ("SAME_LOWER", 15, [1, 1, 1, 1]),
    ("VALID", 16, [0, 0, 0, 0]),
])
@pytest.mark.parametrize("opset", [17, 18])
def test_resolve_auto_pad_conv_stride2_exact(auto_pad, size, expected, opset):
    shape = [1, 3, size, size]
    model = conv_model(shape, auto_pad, strides=(2, 2), opset=opset)
    out, report = pipeline(model, ResolveAutoPad())
    conv = find_node(out, "Conv")
    assert op_histogram(out) == {"Conv": 1}
    assert attr(conv, "auto_pad", b"NOTSET") == b"NOTSET"
    assert list(attr(conv, "pads")) == expected
    assert changed(report) == 1
    assert_exact_and_idempotent(model, out, shape, ResolveAutoPad())


@pytest.mark.parametrize("auto_pad,expected", [("SAME_UPPER", [2, 2, 2, 2]), ("SAME_LOWER", [2, 2, 2, 2])])
def test_resolve_auto_pad_dilated_conv_matches_spec(auto_pad, expected):
    from onnx.reference import ReferenceEvaluator

    shape = [1, 2, 9, 9]
    model = conv_model(shape, auto_pad, dilations=(2, 2))
    out, _ = pipeline(model, ResolveAutoPad())
    assert list(attr(find_node(out, "Conv"), "pads")) == expected  # total = (k-1)*d + 1 - 1 = 4
    feeds = feeds_for(shape)
    with pytest.raises(Exception, match="Dilation not supported"):
        ort(model, feeds)  # onnxruntime cannot run a dilated SAME Conv; the spec's reference can
    reference = ReferenceEvaluator(model).run(None, feeds)[0]
    np.testing.assert_allclose(ort(out, feeds), reference, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("op,auto_pad,ceil_mode", [
    ("MaxPool", "SAME_UPPER", 1), ("MaxPool", "SAME_LOWER", 0), ("AveragePool", "SAME_UPPER", 0),
    ("AveragePool", "SAME_LOWER", 1),
])
def test_resolve_auto_pad_pools(op, auto_pad, ceil_mode):
    shape = [1, 2, 16, 15]
    pool = helper.make_node(op, ["x"], ["y"], auto_pad=auto_pad, kernel_shape=[3, 3], strides=[2, 2],
                            ceil_mode=ceil_mode)
    model = x_model([pool], shape)
    out, _ = pipeline(model, ResolveAutoPad())
    resolved = find_node(out, op)
    assert attr(resolved, "ceil_mode", 0) == 0
    assert list(attr(resolved, "pads")) == ([0, 1, 1, 1] if auto_pad == "SAME_UPPER" else [1, 1, 0, 1])
    assert_exact_and_idempotent(model, out, shape, ResolveAutoPad())


@pytest.mark.parametrize("auto_pad,expected", [("SAME_UPPER", [0, 0, 1, 1]), ("SAME_LOWER", [1, 1, 0, 0])])
def test_resolve_auto_pad_conv_transpose(auto_pad, expected):
    shape = [1, 3, 5, 5]
    deconv = helper.make_node("ConvTranspose", ["x", "w"], ["y"], auto_pad=auto_pad, strides=[2, 2])
    model = x_model([deconv], shape, [weight("w", [3, 4, 3, 3])])
    out, _ = pipeline(model, ResolveAutoPad())
    assert list(attr(find_node(out, "ConvTranspose"), "pads")) == expected  # total = 3 - 2 = 1
    assert_exact_and_idempotent(model, out, shape, ResolveAutoPad())


def test_resolve_auto_pad_must_not_fire():
    dynamic = conv_model(["N", 3, "H", "W"], "SAME_UPPER", strides=(2, 2))
    _, report = pipeline(dynamic, ResolveAutoPad())
    assert changed(report) == 0
    assert_skipped(report, "resolve-auto-pad", r"spatial dims are dynamic")

    pool = helper.make_node("MaxPool", ["x"], ["y"], auto_pad="SAME_UPPER", kernel_shape=[3, 3], dilations=[2, 2])
    _, report = pipeline(x_model([pool], [1, 2, 9, 9]), ResolveAutoPad())
    assert_skipped(report, "resolve-auto-pad", r"dilated pools without the dilation")

    with_shape = helper.make_node("ConvTranspose", ["x", "w"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2],
                                  output_shape=[10, 10])
    _, report = pipeline(x_model([with_shape], [1, 3, 5, 5], [weight("w", [3, 4, 3, 3])]), ResolveAutoPad())
    assert_skipped(report, "resolve-auto-pad", r"output_shape")

    small_kernel = helper.make_node("ConvTranspose", ["x", "w"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2])
    _, report = pipeline(x_model([small_kernel], [1, 3, 5, 5], [weight("w", [3, 4, 1, 1])]), ResolveAutoPad())
    assert_skipped(report, "resolve-auto-pad", r"negative pads")

    runtime_weight = helper.make_node("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2])
    w_input = helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3, "kh", "kw"])
    _, report = pipeline(x_model([runtime_weight], [1, 3, 8, 8], extra_inputs=[w_input]), ResolveAutoPad())
    assert_skipped(report, "resolve-auto-pad", r"kernel size is unknown")
