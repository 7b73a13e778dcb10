"""fuse-gelu: Erf spellings, Keras' Erfc spelling, the tanh form, opset refusal, idempotence."""

from __future__ import annotations

import math
import re

import onnx
import pytest
from onnx import TensorProto

from norm_graphs import apply, assert_same, const, make_model, node, ops
from onnxmend.passes.gelu import FuseGelu

F32 = TensorProto.FLOAT


def erf_gelu(scale: str, order: str, opset: int = 20) -> onnx.ModelProto:
    inits = {"one": const(1.0), "half": const(0.5), "s2": const(1.4142), "r2": const(0.70710677)}
    nodes = [node("Div", ["x", "s2"], "z") if scale == "div" else node("Mul", ["x", "r2"], "z"),
             node("Erf", ["z"], "e"), node("Add", ["e", "one"], "a")]
    if order == "half_last":
        nodes += [node("Mul", ["x", "a"], "xa"), node("Mul", ["xa", "half"], "y")]
    elif order == "half_first":
        nodes += [node("Mul", ["x", "half"], "hx"), node("Mul", ["hx", "a"], "y")]
    else:
        nodes += [node("Mul", ["a", "half"], "ha"), node("Mul", ["x", "ha"], "y")]
    return make_model(nodes, {"x": ((2, 16), F32)}, ["y"], inits, opset=opset)


@pytest.mark.parametrize("scale", ["div", "mul"])
@pytest.mark.parametrize("order", ["half_last", "half_first", "half_on_erf"])
def test_erf_spellings(scale: str, order: str) -> None:
    model = erf_gelu(scale, order)
    out, result = apply(model, FuseGelu())
    assert result.changed == 1 and ops(out) == ["Gelu"]
    assert_same(model, out, atol=1e-5)
    assert apply(out, FuseGelu())[1].changed == 0


def test_keras_erfc_spelling() -> None:
    inits = {"one": const(1.0), "half": const(0.5), "r2": const(0.70710677)}
    nodes = [node("Mul", ["half", "x"], "hx"), node("Neg", ["x"], "nx"), node("Mul", ["nx", "r2"], "z"),
             node("Erf", ["z"], "e"), node("Sub", ["one", "e"], "erfc"), node("Mul", ["hx", "erfc"], "y")]
    model = make_model(nodes, {"x": ((2, 16), F32)}, ["y"], inits, opset=20)
    out, _ = apply(model, FuseGelu())
    assert ops(out) == ["Gelu"]
    assert_same(model, out, atol=1e-5)


@pytest.mark.parametrize("cube", ["pow", "mul"])
def test_tanh_form(cube: str) -> None:
    inits = {"one": const(1.0), "half": const(0.5), "three": const(3.0), "c": const(0.044715),
             "k": const(math.sqrt(2 / math.pi))}
    nodes = [node("Pow", ["x", "three"], "x3")] if cube == "pow" else [
        node("Mul", ["x", "x"], "x2"), node("Mul", ["x", "x2"], "x3")]
    nodes += [node("Mul", ["c", "x3"], "cx3"), node("Add", ["x", "cx3"], "in"), node("Mul", ["k", "in"], "kin"),
              node("Tanh", ["kin"], "t"), node("Add", ["one", "t"], "a"), node("Mul", ["x", "a"], "xa"),
              node("Mul", ["half", "xa"], "y")]
    model = make_model(nodes, {"x": ((2, 16), F32)}, ["y"], inits, opset=20)
    out, _ = apply(model, FuseGelu())
    assert ops(out) == ["Gelu"]
    assert onnx.helper.get_attribute_value(out.graph.node[0].attribute[0]) == b"tanh"
    assert_same(model, out, atol=1e-5)


def test_below_opset_20_is_left_with_reason() -> None:
    out, result = apply(erf_gelu("div", "half_last", opset=17), FuseGelu())
    assert result.changed == 0 and "Gelu" not in ops(out)
    assert result.skipped[0].reason == "Gelu needs opset 20; the graph is at 17"


def test_wrong_constant_is_not_gelu() -> None:
    model = erf_gelu("div", "half_last")
    for init in model.graph.initializer:
        if init.name == "half":
            init.CopyFrom(onnx.numpy_helper.from_array(const(0.25), "half"))
    out, result = apply(model, FuseGelu())
    assert result.changed == 0
    assert re.search(r"times 0.25 and x, not times 0.5·x", result.skipped[0].reason)
