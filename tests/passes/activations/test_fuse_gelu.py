"""fuse-gelu: Erf spellings, Keras' Erfc spelling, the tanh form, onnxruntime's contrib ops below opset 20
for the fix preset, the other presets' refusal, idempotence."""

from __future__ import annotations

import math
import re

import onnx
import pytest
from onnx import TensorProto

from onnxmend.passes.activations.fuse_gelu import FuseGelu
from onnxmend.passes.folding.fold_conv_input_affine import FoldConvInputAffine
from onnxmend.passes.infra.base import PassContext
from onnxmend.passes.infra.records import PipelineReport
from tests.builders import apply, assert_same, const, make_model, node, ops, rand, run_passes

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


def keras_erfc_gelu(opset: int, dtype: int = F32) -> onnx.ModelProto:
    """Keras/tf2onnx: 0.5·x·(1 − Erf(−x·(1/√2)))."""
    np_dtype = onnx.helper.tensor_dtype_to_np_dtype(dtype)
    inits = {"one": const(1.0, np_dtype), "half": const(0.5, np_dtype), "r2": const(0.70710677, np_dtype)}
    nodes = [node("Mul", ["half", "x"], "hx"), node("Neg", ["x"], "nx"), node("Mul", ["nx", "r2"], "z"),
             node("Erf", ["z"], "e"), node("Sub", ["one", "e"], "erfc"), node("Mul", ["hx", "erfc"], "y")]
    return make_model(nodes, {"x": ((2, 16), dtype)}, ["y"], inits, opset=opset)


def tanh_gelu(cube: str, opset: int) -> onnx.ModelProto:
    inits = {"one": const(1.0), "half": const(0.5), "three": const(3.0), "c": const(0.044715),
             "k": const(math.sqrt(2 / math.pi))}
    nodes = [node("Pow", ["x", "three"], "x3")] if cube == "pow" else [
        node("Mul", ["x", "x"], "x2"), node("Mul", ["x", "x2"], "x3")]
    nodes += [node("Mul", ["c", "x3"], "cx3"), node("Add", ["x", "cx3"], "in"), node("Mul", ["k", "in"], "kin"),
              node("Tanh", ["kin"], "t"), node("Add", ["one", "t"], "a"), node("Mul", ["x", "a"], "xa"),
              node("Mul", ["half", "xa"], "y")]
    return make_model(nodes, {"x": ((2, 16), F32)}, ["y"], inits, opset=opset)


def fuse(model: onnx.ModelProto, preset: str = "fix") -> tuple[onnx.ModelProto, PipelineReport]:
    """fuse-gelu alone through the manager: checker, strict shape inference and the onnxruntime gate."""
    ctx = PassContext(opset=model.opset_import[0].version, preset=preset)  # type: ignore[arg-type]
    return run_passes(model, [FuseGelu()], ctx)


def imports(model: onnx.ModelProto) -> dict[str, int]:
    return {o.domain: o.version for o in model.opset_import}


# --- opset >= 20: the standard Gelu ------------------------------------------------------------------

@pytest.mark.parametrize("scale", ["div", "mul"])
@pytest.mark.parametrize("order", ["half_last", "half_first", "half_on_erf"])
def test_erf_spellings(scale: str, order: str) -> None:
    model = erf_gelu(scale, order)
    out, result = apply(model, FuseGelu())
    assert result.changed == 1 and ops(out) == ["Gelu"]
    assert_same(model, out, atol=1e-5)
    assert apply(out, FuseGelu())[1].changed == 0


def test_keras_erfc_spelling() -> None:
    model = keras_erfc_gelu(opset=20)
    out, _ = apply(model, FuseGelu())
    assert ops(out) == ["Gelu"]
    assert_same(model, out, atol=1e-5)


@pytest.mark.parametrize("cube", ["pow", "mul"])
def test_tanh_form(cube: str) -> None:
    model = tanh_gelu(cube, opset=20)
    out, _ = apply(model, FuseGelu())
    assert ops(out) == ["Gelu"]
    assert onnx.helper.get_attribute_value(out.graph.node[0].attribute[0]) == b"tanh"
    assert_same(model, out, atol=1e-5)


def test_opset_20_keeps_the_standard_gelu_with_the_fix_preset() -> None:
    out, report = fuse(keras_erfc_gelu(opset=20))
    assert ops(out) == ["Gelu"] and out.graph.node[0].domain == ""
    assert onnx.helper.get_attribute_value(out.graph.node[0].attribute[0]) == b"none"
    assert imports(out) == {"": 20}
    assert report.notes["fuse-gelu"] == ["emitted 1 Gelu (graph opset 20)"]


# --- below opset 20: onnxruntime's com.microsoft ops, fix preset only ----------------------------------

@pytest.mark.parametrize("spelling", ["keras_erfc", "div", "mul"])
def test_fix_preset_below_opset_20_emits_contrib_gelu(spelling: str) -> None:
    model = keras_erfc_gelu(opset=17) if spelling == "keras_erfc" else erf_gelu(spelling, "half_last", opset=17)
    out, report = fuse(model)
    assert not report.rejected and ops(out) == ["Gelu"]
    assert out.graph.node[0].domain == "com.microsoft" and not out.graph.node[0].attribute
    assert imports(out) == {"": 17, "com.microsoft": 1}
    assert report.notes["fuse-gelu"] == ["emitted 1 com.microsoft::Gelu (graph opset 17)"]
    onnx.checker.check_model(out, full_check=True)
    # x·(1/√2) is what onnxruntime's Gelu computes, bit for bit; the truncated x/1.4142 is not.
    assert_same(model, out, atol=1e-5 if spelling == "div" else 0.0)
    again, second = fuse(out)
    assert not second.records and again.SerializeToString() == out.SerializeToString()


@pytest.mark.parametrize("cube", ["pow", "mul"])
def test_fix_preset_below_opset_20_emits_fast_gelu_for_tanh(cube: str) -> None:
    model = tanh_gelu(cube, opset=17)
    out, report = fuse(model)
    assert not report.rejected and ops(out) == ["FastGelu"]
    assert out.graph.node[0].domain == "com.microsoft" and list(out.graph.node[0].input) == ["x"]
    assert imports(out) == {"": 17, "com.microsoft": 1}
    assert report.notes["fuse-gelu"] == ["emitted 1 com.microsoft::FastGelu (graph opset 17)"]
    assert_same(model, out, atol=1e-5)  # the same rounding as the standard Gelu(approximate="tanh")


@pytest.mark.parametrize("preset", ["portable", "none"])
def test_other_presets_below_opset_20_are_left_with_reason(preset: str) -> None:
    out, report = fuse(erf_gelu("div", "half_last", opset=17), preset)
    assert not report.records and "Gelu" not in ops(out) and imports(out) == {"": 17}
    assert re.fullmatch(rf"Gelu needs opset 20; the graph is at 17 and the {preset} preset emits no "
                        r"com\.microsoft contrib ops", report.skipped["fuse-gelu"][0].reason)


def test_double_gets_no_contrib_op() -> None:
    out, result = apply(keras_erfc_gelu(opset=17, dtype=TensorProto.DOUBLE), FuseGelu())
    assert result.changed == 0 and "Gelu" not in ops(out)
    assert re.fullmatch(r"com\.microsoft Gelu is only emitted for float32/float16; x is float64",
                        result.skipped[0].reason)


@pytest.mark.parametrize("half", [0.25, 1.0, None])
def test_scaled_gelu_becomes_gelu_then_mul(half) -> None:
    """k·x·(1 + erf(x/√2)) = 2k·GELU(x), for a constant k other than 0.5 or none at all (k = 1)."""
    model = erf_gelu("mul", "half_last")
    if half is None:  # the 0.5 was moved elsewhere: y = x·(1 + erf(x/√2))
        model.graph.node[-2].output[0] = "y"
        del model.graph.node[-1]
    else:
        for init in model.graph.initializer:
            if init.name == "half":
                init.CopyFrom(onnx.numpy_helper.from_array(const(half), "half"))
    out, result = apply(model, FuseGelu())
    assert result.changed == 1 and ops(out) == ["Gelu", "Mul"]
    scale = onnx.numpy_helper.to_array(out.graph.initializer[0])
    assert float(scale) == pytest.approx(2 * (half or 1.0))
    assert result.notes == ["emitted 1 Gelu with a Mul (a scaled GELU) (graph opset 20)"]
    assert_same(model, out, atol=1e-5)
    assert apply(out, FuseGelu())[1].changed == 0


def test_scaled_gelu_before_a_conv_folds_its_scale_into_the_conv() -> None:
    """What fold-conv-input-affine left of a GELU whose 0.5 it had moved into the next 1×1 Conv: the Gelu's
    new Mul(2) goes into the same Conv, so the pair of passes ends with Gelu → Conv."""
    inits = {"one": const(1.0), "r2": const(0.70710677), "w": rand((4, 8, 1, 1))}
    nodes = [node("Mul", ["x", "r2"], "z"), node("Erf", ["z"], "e"), node("Add", ["e", "one"], "a"),
             node("Mul", ["x", "a"], "xa"), node("Conv", ["xa", "w"], "y")]
    model = make_model(nodes, {"x": ((1, 8, 4, 4), F32)}, ["y"], inits, opset=20)
    ctx = PassContext(opset=20)
    out, report = run_passes(model, [FuseGelu(), FoldConvInputAffine()], ctx)
    assert not report.rejected and ops(out) == ["Conv", "Gelu"]
    assert_same(model, out, atol=1e-5)


def test_a_product_with_another_tensor_is_not_gelu() -> None:
    """0.5·z·(1 + erf(x/√2)) for a z that is not x."""
    model = erf_gelu("div", "half_last")
    for n in model.graph.node:
        if n.op_type == "Mul" and "a" in n.input:
            n.input[list(n.input).index("x")] = "z_in"
    model.graph.input.append(onnx.helper.make_tensor_value_info("z_in", F32, [2, 16]))
    out, result = apply(model, FuseGelu())
    assert result.changed == 0
    assert re.fullmatch(r"Mul_xa does not multiply by x or 0.5", result.skipped[0].reason)
