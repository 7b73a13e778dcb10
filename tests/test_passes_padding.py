"""Padding passes: resolve-auto-pad, fold-pad, fold-dynamic-pad, split-asymmetric-pads, inspect_padding."""

from __future__ import annotations

import math
import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from onnxmend.passes.infra.base import Pass, PassContext
from onnxmend.passes.cleanup.eliminate_dead_nodes import EliminateDeadNodes
from onnxmend.passes.cleanup.fold_constants import FoldConstants
from onnxmend.core.graph import op_histogram
from tests.onnx_builders import run_pipeline as run_passes
from onnxmend.passes.padding.fold_dynamic_pad import FoldDynamicPad
from onnxmend.passes.padding.fold_pad import FoldPad
from onnxmend.passes.padding.split_asymmetric_pads import SplitAsymmetricPads
from onnxmend.passes.padding.resolve_auto_pad import ResolveAutoPad
from onnxmend.runtime.inspect import inspect_model
from onnxmend.runtime.session import create_session
from tests.onnx_builders import candidates

RNG_SEED = 0


# ---------------------------------------------------------------- builders and runners

def make_model(nodes, x_shape, inits=(), opset=17, extra_inputs=()) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x_shape), *extra_inputs],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None] * 4)], list(inits),
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], ir_version=8)
    onnx.checker.check_model(model)
    return model


def weight(name: str, shape, seed: int = RNG_SEED) -> onnx.TensorProto:
    return numpy_helper.from_array(np.random.default_rng(seed).standard_normal(shape).astype(np.float32), name)


def ints(name: str, values) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)


def scalar(name: str, value: float) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def feeds_for(shape, seed: int = 1) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(seed).standard_normal(shape).astype(np.float32)}


def ort(model: onnx.ModelProto, feeds) -> np.ndarray:
    session = create_session(model, provider="cpu", opt_level="disable")
    return session.run(feeds)[session.output_names[0]]


def apply(model: onnx.ModelProto, *passes: Pass, preset: str = "fix", verify: bool = False):
    ctx = PassContext(opset=next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), preset=preset)
    out, report = run_passes(model, list(passes), ctx=ctx, verify=verify)
    onnx.checker.check_model(out)
    return out, report


def changed(report) -> int:
    return sum(r.changed for r in report.records if r.status == "applied")


def reasons(report, name: str) -> list[str]:
    return [s.reason for s in report.skipped.get(name, [])]


def assert_skipped(report, name: str, pattern: str) -> None:
    found = reasons(report, name)
    assert any(re.search(pattern, r) for r in found), f"no skip matching {pattern!r} in {found}"


def node(model: onnx.ModelProto, op: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.op_type == op)


def attr(n: onnx.NodeProto, name: str, default=None):
    found = [a for a in n.attribute if a.name == name]
    return helper.get_attribute_value(found[0]) if found else default


def assert_exact_and_idempotent(before, after, x_shape, p: Pass, preset: str = "fix") -> None:
    feeds = feeds_for(x_shape)
    np.testing.assert_array_equal(ort(before, feeds), ort(after, feeds))
    _, again = apply(after, p, preset=preset)
    assert changed(again) == 0


# ---------------------------------------------------------------- resolve-auto-pad

def conv_model(x_shape, auto_pad, strides=(1, 1), dilations=(1, 1), k=3, opset=17):
    conv = helper.make_node("Conv", ["x", "w"], ["y"], auto_pad=auto_pad, strides=list(strides),
                            dilations=list(dilations))
    return make_model([conv], x_shape, [weight("w", [4, x_shape[1], k, k])], opset)


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
    out, report = apply(model, ResolveAutoPad())
    conv = node(out, "Conv")
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
    out, _ = apply(model, ResolveAutoPad())
    assert list(attr(node(out, "Conv"), "pads")) == expected  # total = (k-1)*d + 1 - 1 = 4
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
    model = make_model([pool], shape)
    out, _ = apply(model, ResolveAutoPad())
    resolved = node(out, op)
    assert attr(resolved, "ceil_mode", 0) == 0
    assert list(attr(resolved, "pads")) == ([0, 1, 1, 1] if auto_pad == "SAME_UPPER" else [1, 1, 0, 1])
    assert_exact_and_idempotent(model, out, shape, ResolveAutoPad())


@pytest.mark.parametrize("auto_pad,expected", [("SAME_UPPER", [0, 0, 1, 1]), ("SAME_LOWER", [1, 1, 0, 0])])
def test_resolve_auto_pad_conv_transpose(auto_pad, expected):
    shape = [1, 3, 5, 5]
    deconv = helper.make_node("ConvTranspose", ["x", "w"], ["y"], auto_pad=auto_pad, strides=[2, 2])
    model = make_model([deconv], shape, [weight("w", [3, 4, 3, 3])])
    out, _ = apply(model, ResolveAutoPad())
    assert list(attr(node(out, "ConvTranspose"), "pads")) == expected  # total = 3 - 2 = 1
    assert_exact_and_idempotent(model, out, shape, ResolveAutoPad())


def test_resolve_auto_pad_must_not_fire():
    dynamic = conv_model(["N", 3, "H", "W"], "SAME_UPPER", strides=(2, 2))
    _, report = apply(dynamic, ResolveAutoPad())
    assert changed(report) == 0
    assert_skipped(report, "resolve-auto-pad", r"spatial dims are dynamic")

    pool = helper.make_node("MaxPool", ["x"], ["y"], auto_pad="SAME_UPPER", kernel_shape=[3, 3], dilations=[2, 2])
    _, report = apply(make_model([pool], [1, 2, 9, 9]), ResolveAutoPad())
    assert_skipped(report, "resolve-auto-pad", r"dilated pools without the dilation")

    with_shape = helper.make_node("ConvTranspose", ["x", "w"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2],
                                  output_shape=[10, 10])
    _, report = apply(make_model([with_shape], [1, 3, 5, 5], [weight("w", [3, 4, 3, 3])]), ResolveAutoPad())
    assert_skipped(report, "resolve-auto-pad", r"output_shape")

    small_kernel = helper.make_node("ConvTranspose", ["x", "w"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2])
    _, report = apply(make_model([small_kernel], [1, 3, 5, 5], [weight("w", [3, 4, 1, 1])]), ResolveAutoPad())
    assert_skipped(report, "resolve-auto-pad", r"negative pads")

    runtime_weight = helper.make_node("Conv", ["x", "w"], ["y"], auto_pad="SAME_UPPER", strides=[2, 2])
    w_input = helper.make_tensor_value_info("w", TensorProto.FLOAT, [4, 3, "kh", "kw"])
    _, report = apply(make_model([runtime_weight], [1, 3, 8, 8], extra_inputs=[w_input]), ResolveAutoPad())
    assert_skipped(report, "resolve-auto-pad", r"kernel size is unknown")


# ---------------------------------------------------------------- fold-pad

def pad_conv_model(pads, opset=17, value=None, mode="constant", x_shape=(1, 3, 8, 8), op="Conv", pool_attrs=None,
                   pre=None, axes=None):
    pre_nodes = [helper.make_node(pre, ["x"], ["x_act"])] if pre else []
    data = "x_act" if pre else "x"
    pad_inputs = [data, "pads", "value" if value is not None else ""] + (["axes"] if axes is not None else [])
    inits = [ints("pads", pads)] + ([scalar("value", value)] if value is not None else [])
    inits += [ints("axes", axes)] if axes is not None else []
    pad = helper.make_node("Pad", pad_inputs, ["p"], mode=mode)
    if op == "Conv":
        consumer = helper.make_node("Conv", ["p", "w"], ["y"], kernel_shape=[3, 3])
        inits.append(weight("w", [4, x_shape[1], 3, 3]))
    else:
        consumer = helper.make_node(op, ["p"], ["y"], **(pool_attrs if pool_attrs is not None else {"kernel_shape": [3, 3]}))
    return make_model(pre_nodes + [pad, consumer], list(x_shape), inits, opset)


@pytest.mark.parametrize("opset", [17, 18])
def test_fold_pad_into_conv(opset):
    model = pad_conv_model([0, 0, 1, 0, 0, 0, 1, 1], opset=opset)
    out, report = apply(model, FoldPad())
    assert op_histogram(out) == {"Conv": 1}
    assert list(attr(node(out, "Conv"), "pads")) == [1, 0, 1, 1]
    assert changed(report) == 1
    assert_exact_and_idempotent(model, out, [1, 3, 8, 8], FoldPad())


def test_fold_pad_with_axes_input_opset18():
    model = pad_conv_model([1, 0, 1, 1], opset=18, axes=[2, 3])
    out, _ = apply(model, FoldPad())
    assert op_histogram(out) == {"Conv": 1}
    assert list(attr(node(out, "Conv"), "pads")) == [1, 0, 1, 1]
    assert_exact_and_idempotent(model, out, [1, 3, 8, 8], FoldPad())


def test_fold_pad_through_layout_transpose():
    shape = [1, 8, 8, 3]  # NHWC
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"]),
        helper.make_node("Transpose", ["p"], ["t"], perm=[0, 3, 1, 2]),
        helper.make_node("Conv", ["t", "w"], ["y"], kernel_shape=[3, 3], strides=[2, 2]),
    ]
    # NHWC pads: H gets (0, 1), W gets (1, 1)
    model = make_model(nodes, shape, [ints("pads", [0, 0, 1, 0, 0, 1, 1, 0]), weight("w", [4, 3, 3, 3])])
    out, _ = apply(model, FoldPad())
    assert op_histogram(out) == {"Transpose": 1, "Conv": 1}
    assert list(attr(node(out, "Conv"), "pads")) == [0, 1, 1, 1]
    assert_exact_and_idempotent(model, out, shape, FoldPad())


def test_fold_pad_reads_constant_node_and_constant_subgraph():
    shape = [1, 3, 8, 8]
    nodes = [
        helper.make_node("Constant", [], ["head"], value=ints("head_v", [0, 0, 1, 1])),
        helper.make_node("Concat", ["head", "tail"], ["pads_i"], axis=0),
        helper.make_node("Cast", ["pads_i"], ["pads"], to=TensorProto.INT64),
        helper.make_node("Pad", ["x", "pads"], ["p"]),
        helper.make_node("Conv", ["p", "w"], ["y"], kernel_shape=[3, 3]),
    ]
    model = make_model(nodes, shape, [ints("tail", [0, 0, 1, 1]), weight("w", [4, 3, 3, 3])])
    out, _ = apply(model, FoldPad())
    assert op_histogram(out) == {"Conv": 1}
    assert list(attr(node(out, "Conv"), "pads")) == [1, 1, 1, 1]
    assert_exact_and_idempotent(model, out, shape, FoldPad())


def test_fold_pad_merges_consecutive_pads_then_folds():
    shape = [1, 3, 8, 8]
    nodes = [
        helper.make_node("Pad", ["x", "p1"], ["a"]),
        helper.make_node("Pad", ["a", "p2"], ["b"]),
        helper.make_node("Conv", ["b", "w"], ["y"], kernel_shape=[3, 3]),
    ]
    inits = [ints("p1", [0, 0, 1, 0, 0, 0, 0, 1]), ints("p2", [0, 0, 0, 1, 0, 0, 1, 0]), weight("w", [4, 3, 3, 3])]
    model = make_model(nodes, shape, inits)
    out, report = apply(model, FoldPad())
    assert op_histogram(out) == {"Conv": 1}
    assert list(attr(node(out, "Conv"), "pads")) == [1, 1, 1, 1]
    assert changed(report) == 2
    assert_exact_and_idempotent(model, out, shape, FoldPad())

    two_pads = make_model(nodes[:2] + [helper.make_node("Relu", ["b"], ["y"])], shape, inits[:2])
    merged, _ = apply(two_pads, FoldPad())
    assert op_histogram(merged) == {"Pad": 1, "Relu": 1}
    assert_exact_and_idempotent(two_pads, merged, shape, FoldPad())


@pytest.mark.parametrize("pre", ["Relu", "Sigmoid", "Abs", "Softplus"])
def test_fold_pad_into_maxpool_after_non_negative_op_and_with_neg_inf(pre):
    model = pad_conv_model([0, 0, 1, 1, 0, 0, 1, 1], op="MaxPool", pre=pre)
    out, _ = apply(model, FoldPad())
    assert op_histogram(out) == {pre: 1, "MaxPool": 1}
    assert_exact_and_idempotent(model, out, [1, 3, 8, 8], FoldPad())

    any_sign = pad_conv_model([0, 0, 0, 0, 0, 0, 1, 1], op="MaxPool", value=-math.inf)
    out, _ = apply(any_sign, FoldPad())
    assert op_histogram(out) == {"MaxPool": 1}
    assert_exact_and_idempotent(any_sign, out, [1, 3, 8, 8], FoldPad())


def test_fold_pad_into_average_pool_sets_count_include_pad():
    model = pad_conv_model([0, 0, 1, 1, 0, 0, 1, 1], op="AveragePool", pool_attrs={"kernel_shape": [3, 3]})
    out, _ = apply(model, FoldPad())
    pool = node(out, "AveragePool")
    assert op_histogram(out) == {"AveragePool": 1}
    assert attr(pool, "count_include_pad") == 1 and list(attr(pool, "pads")) == [1, 1, 1, 1]
    assert_exact_and_idempotent(model, out, [1, 3, 8, 8], FoldPad())


def test_fold_pad_removes_all_zero_pad():
    model = pad_conv_model([0] * 8, op="Relu", pool_attrs={})
    out, _ = apply(model, FoldPad())
    assert op_histogram(out) == {"Relu": 1}
    assert_exact_and_idempotent(model, out, [1, 3, 8, 8], FoldPad())


@pytest.mark.parametrize("kwargs,pattern", [
    (dict(pads=[0, 0, 1, 1, 0, 0, 1, 1], mode="reflect"), r"mode 'reflect' is not constant"),
    (dict(pads=[0, 0, 1, 1, 0, 0, 1, 1], mode="edge"), r"mode 'edge' is not constant"),
    (dict(pads=[0, 0, 1, 1, 0, 0, 1, 1], value=1.0), r"value 1 is not zero"),
    (dict(pads=[0, 0, -1, 0, 0, 0, 1, 1]), r"negative pads crop"),
    (dict(pads=[0, 1, 1, 1, 0, 0, 1, 1]), r"batch/channel axes"),
    (dict(pads=[0, 0, 1, 1, 0, 0, 1, 1], op="ConvTranspose"), r"ConvTranspose pads crop its output"),
    (dict(pads=[0, 0, 1, 1, 0, 0, 1, 1], op="MaxPool"), r"MaxPool input may be negative"),
    (dict(pads=[0, 0, 1, 1, 0, 0, 1, 1], op="MaxPool", pre="Relu",
          pool_attrs={"kernel_shape": [3, 3], "ceil_mode": 1}), r"ceil_mode=1"),
    (dict(pads=[0, 0, 2, 2, 0, 0, 2, 2], op="MaxPool", pre="Relu",
          pool_attrs={"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}), r"reach the kernel size"),
    (dict(pads=[0, 0, 1, 1, 0, 0, 1, 1], op="AveragePool",
          pool_attrs={"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]}), r"count_include_pad=0"),
    (dict(pads=[0, 0, 1, 1, 0, 0, 1, 1], op="AveragePool",
          pool_attrs={"kernel_shape": [3, 3], "auto_pad": "SAME_UPPER"}), r"resolve-auto-pad runs first"),
    (dict(pads=[0, 0, 1, 1, 0, 0, 1, 1], op="Relu", pool_attrs={}), r"consumer Relu cannot absorb"),
])
def test_fold_pad_must_not_fire(kwargs, pattern):
    if kwargs.get("op") == "ConvTranspose":
        model = pad_conv_model(kwargs["pads"])
        conv = node(model, "Conv")
        conv.op_type = "ConvTranspose"
        model.graph.initializer[-1].CopyFrom(weight("w", [3, 4, 3, 3]))
    else:
        model = pad_conv_model(**kwargs)
    out, report = apply(model, FoldPad())
    assert changed(report) == 0
    assert op_histogram(out).get("Pad") == 1
    assert_skipped(report, "fold-pad", pattern)


def test_fold_pad_must_not_fire_on_shared_or_output_pads():
    shape = [1, 3, 8, 8]
    shared = [
        helper.make_node("Pad", ["x", "pads"], ["p"]),
        helper.make_node("Conv", ["p", "w"], ["c"], kernel_shape=[3, 3]),
        helper.make_node("ReduceSum", ["p"], ["s"], keepdims=0),
        helper.make_node("Add", ["c", "s"], ["y"]),
    ]
    inits = [ints("pads", [0, 0, 1, 1, 0, 0, 1, 1]), weight("w", [4, 3, 3, 3])]
    _, report = apply(make_model(shared, shape, inits), FoldPad())
    assert_skipped(report, "fold-pad", r"Pad output has 2 consumers")

    as_output = [helper.make_node("Pad", ["x", "pads"], ["y"])]
    _, report = apply(make_model(as_output, shape, inits[:1]), FoldPad())
    assert_skipped(report, "fold-pad", r"Pad output is a graph output")

    runtime_pads = [helper.make_node("Pad", ["x", "pads_in"], ["p"]),
                    helper.make_node("Conv", ["p", "w"], ["y"], kernel_shape=[3, 3])]
    pads_input = helper.make_tensor_value_info("pads_in", TensorProto.INT64, [8])
    _, report = apply(make_model(runtime_pads, shape, inits[1:], extra_inputs=[pads_input]), FoldPad())
    assert_skipped(report, "fold-pad", r"depend on the graph input 'pads_in'")


def test_fold_pad_portable_keeps_asymmetric_and_folds_symmetric():
    asym = pad_conv_model([0, 0, 0, 0, 0, 0, 1, 1])
    _, report = apply(asym, FoldPad(), SplitAsymmetricPads(), preset="portable")
    assert changed(report) == 0
    assert_skipped(report, "fold-pad", r"asymmetric, which the portable preset avoids")

    sym = pad_conv_model([0, 0, 1, 1, 0, 0, 1, 1])
    out, _ = apply(sym, FoldPad(), SplitAsymmetricPads(), preset="portable")
    assert op_histogram(out) == {"Conv": 1}


# ---------------------------------------------------------------- split-asymmetric-pads

@pytest.mark.parametrize("op,attrs,fill", [
    ("Conv", {}, 0.0),
    ("MaxPool", {}, -np.inf),
    ("AveragePool", {"count_include_pad": 1}, 0.0),
])
def test_split_asymmetric_pads(op, attrs, fill):
    shape = [1, 3, 9, 9]
    inputs = ["x", "w"] if op == "Conv" else ["x"]
    consumer = helper.make_node(op, inputs, ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 2, 1], **attrs)
    model = make_model([consumer], shape, [weight("w", [4, 3, 3, 3])] if op == "Conv" else [])
    out, report = apply(model, SplitAsymmetricPads(), preset="portable")
    assert op_histogram(out) == {"Pad": 1, op: 1}
    assert list(attr(node(out, op), "pads")) == [1, 0, 1, 0]
    pad = node(out, "Pad")
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
    model = make_model([consumer], [1, 3, 8, 8], [weight("w", [3, 4, 3, 3])] if op == "ConvTranspose" else [])
    _, report = apply(model, SplitAsymmetricPads(), preset="portable")
    assert changed(report) == 0
    assert_skipped(report, "split-asymmetric-pads", pattern)


# ---------------------------------------------------------------- fold-dynamic-pad (torch legacy export)

def _tf_same_net(torch):
    nn, functional = torch.nn, torch.nn.functional

    def same_pad(x, k, s):
        ih, iw = x.shape[-2:]
        ph = max((math.ceil(ih / s) - 1) * s + k - ih, 0)
        pw = max((math.ceil(iw / s) - 1) * s + k - iw, 0)
        return functional.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])

    class TFSameNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.c1, self.c2 = nn.Conv2d(3, 8, 3, 2), nn.Conv2d(8, 8, 3, 1)
            self.example_inputs = (torch.randn(1, 3, 15, 16),)

        def forward(self, x):
            return self.c2(same_pad(torch.relu(self.c1(same_pad(x, 3, 2))), 3, 1))

    return TFSameNet()


def _explicit_twin() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 1, 1]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Conv", ["r", "w2"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    ]
    return make_model(nodes, [1, 3, 15, 16], [weight("w1", [8, 3, 3, 3]), weight("w2", [8, 8, 3, 3])])


@pytest.mark.parametrize("dynamic_batch", [False, True])
def test_fold_dynamic_pad_torch_legacy_chain(dynamic_batch):
    torch = pytest.importorskip("torch")
    from onnxmend.exporters.options import ExportOptions
    from onnxmend.exporters.pytorch import export_module

    options = ExportOptions(torch_exporter="legacy", dynamic_batch=dynamic_batch)
    model = export_module(_tf_same_net(torch), "t", options).model
    assert candidates(model, FoldDynamicPad()).count == 2
    passes = [FoldConstants(), FoldDynamicPad(), ResolveAutoPad(), FoldPad(), EliminateDeadNodes()]
    out, report = apply(model, *passes, verify=True)
    histogram = op_histogram(out)
    assert report.rejected == []
    assert histogram.get("Pad", 0) == 0 and histogram.get("Shape", 0) == 0
    assert histogram == op_histogram(_explicit_twin()) == {"Conv": 2, "Relu": 1}
    convs = [list(attr(n, "pads")) for n in out.graph.node if n.op_type == "Conv"]
    assert convs == [[1, 0, 1, 1], [1, 1, 1, 1]]
    feeds = feeds_for([2 if dynamic_batch else 1, 3, 15, 16])
    np.testing.assert_allclose(ort(out, feeds), ort(model, feeds), rtol=1e-5, atol=1e-5)
    _, again = apply(out, *passes)
    assert changed(again) == 0


def _batch_reading_pad(read_index: int) -> onnx.ModelProto:
    # pads = [0, 0, 0, 0, 0, 0, d, d] with d = shape(x)[read_index] - 7
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "idx"], ["d0"], axis=0),
        helper.make_node("Sub", ["d0", "seven"], ["d"]),
        helper.make_node("Concat", ["zeros", "d", "d"], ["pads"], axis=0),
        helper.make_node("Pad", ["x", "pads"], ["p"]),
        helper.make_node("Conv", ["p", "w"], ["y"], kernel_shape=[3, 3]),
    ]
    inits = [ints("idx", [read_index]), ints("seven", [7]), ints("zeros", [0] * 6), weight("w", [4, 3, 3, 3])]
    return make_model(nodes, ["N", 3, 8, 8], inits)


def test_fold_dynamic_pad_reads_static_dims_only():
    model = _batch_reading_pad(read_index=3)  # W = 8 → one row and one column at the end
    out, report = apply(model, FoldDynamicPad(), FoldPad())
    assert op_histogram(out) == {"Conv": 1}
    assert changed(report) == 2
    feeds = feeds_for([2, 3, 8, 8])
    np.testing.assert_array_equal(ort(out, feeds), ort(model, feeds))

    _, report = apply(_batch_reading_pad(read_index=0), FoldDynamicPad())
    assert changed(report) == 0
    assert_skipped(report, "fold-dynamic-pad", r"read a dynamic dimension of 'x'")


# ---------------------------------------------------------------- inspect: the passes' own matchers

def test_inspect_counts_what_the_padding_passes_match():
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"]),
        helper.make_node("Conv", ["p", "w"], ["c"], kernel_shape=[3, 3], pads=[0, 0, 1, 1]),
        helper.make_node("MaxPool", ["c"], ["y"], kernel_shape=[2, 2], auto_pad="SAME_UPPER"),
    ]
    model = make_model(nodes, [1, 3, 8, 8], [ints("pads", [0, 0, 1, 1, 0, 0, 1, 1]), weight("w", [4, 3, 3, 3])])
    found = {c.name: c.count for c in inspect_model(model, preset="fix").candidates}
    assert found["fold-pad"] == 1 and found["resolve-auto-pad"] == 1 and found["fold-dynamic-pad"] == 0
    assert {f.key: f.count for f in inspect_model(model).findings}["asymmetric_pads"] == 1


def test_inspect_does_not_count_a_reflect_pad_that_fold_pad_refuses():
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["p"], mode="reflect"),
        helper.make_node("Conv", ["p", "w"], ["y"], kernel_shape=[3, 3]),
    ]
    model = make_model(nodes, [1, 3, 8, 8], [ints("pads", [0, 0, 1, 1, 0, 0, 1, 1]), weight("w", [4, 3, 3, 3])])
    found = candidates(model, FoldPad())
    assert found.count == 0 and re.search(r"mode 'reflect' is not constant", found.skipped[0].reason)
    _, report = apply(model, FoldPad())
    assert changed(report) == 0


@pytest.mark.parametrize("low,folds", [(0.0, True), (-1.0, False)])
def test_fold_pad_into_maxpool_after_clip_depends_on_min(low, folds):
    nodes = [
        helper.make_node("Clip", ["x", "low", "high"], ["c"]),
        helper.make_node("Pad", ["c", "pads"], ["p"]),
        helper.make_node("MaxPool", ["p"], ["y"], kernel_shape=[3, 3]),
    ]
    inits = [scalar("low", low), scalar("high", 6.0), ints("pads", [0, 0, 1, 1, 0, 0, 1, 1])]
    model = make_model(nodes, [1, 3, 8, 8], inits)
    out, report = apply(model, FoldPad())
    assert op_histogram(out).get("Pad", 0) == (0 if folds else 1)
    if folds:
        assert_exact_and_idempotent(model, out, [1, 3, 8, 8], FoldPad())
    else:
        assert_skipped(report, "fold-pad", r"MaxPool input may be negative")
