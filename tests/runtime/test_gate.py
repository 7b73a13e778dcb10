"""The numeric gate: it finds sizes a graph can run, checks every rewrite at all of them, rejects the wrong
passes a lenient gate lets through, and says so (exit code 3) when it cannot verify at all."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnx_graphsurgeon as gs
import pytest
from onnx import TensorProto, helper

from onnxmend.core.fileio import save_model
from onnxmend.core.specs import specs_from_model
from onnxmend.exporters import ExportOptions, export
from onnxmend.passes.infra.base import Pass, PassContext, PassResult
from onnxmend.passes.infra.catalogue import resolve
from onnxmend.passes.infra.manager import run_passes
from onnxmend.runtime.gate import NumericGate, tolerance_for
from tests.builders import conv_relu_model, init, make_model, value


def zoo(name: str):
    return export(f"zoo:{name}", ExportOptions()).model


@pytest.mark.parametrize("name, sizes, folded, left", [
    ("detector-dynamic-onnx", ["batch 1, dynamic dims 32", "batch 1, dynamic dims 64", "batch 3, dynamic dims 32"],
     {"fold-pad", "fold-batch-norm"}, set()),
    # a reflect Pad cannot fold into the Conv (it is no zero padding); the BatchNorm folds
    ("audio-reflect-onnx", ["batch 1, dynamic dims 64", "batch 1, dynamic dims 65", "batch 3, dynamic dims 64"],
     {"fold-batch-norm"}, {"Pad"}),
])
def test_graphs_that_cannot_run_at_8_are_verified_where_they_run(name, sizes, folded, left) -> None:
    model = zoo(name)
    gate = NumericGate(model)
    assert gate.unavailable == "" and gate.sizes == sizes
    assert any(re.search(r"dynamic dims 8: ", f) for f in gate.plan.failures)
    fixed, report = run_passes(model, resolve("fix"), PassContext(opset=17), gate=gate)
    applied = {r.name for r in report.records if r.status == "applied"}
    assert report.verified and report.rejected == [] and folded <= applied
    ops = {n.op_type for n in fixed.graph.node}
    assert "BatchNormalization" not in ops and ops & {"Pad"} == left


class ScaleFirstWeight(Pass):
    """Multiplies the first Conv weight by ``factor`` every time it runs (and always says it changed)."""

    name = "scale-weight"
    fixes = "nothing: a wrong pass"

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        conv = next(n for n in graph.nodes if n.op == "Conv")
        w = conv.inputs[1]
        conv.inputs[1] = gs.Constant(w.name + "_scaled", (np.asarray(w.values) * self.factor).astype(np.float32))
        return PassResult(changed=1)


class CropTime(Pass):
    """Reads only the first 64 samples: exact at T = 64, wrong at every other length."""

    name = "crop-time"
    fixes = "nothing: a wrong pass"

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        x = graph.inputs[0]
        cropped = gs.Variable("x_cropped", dtype=np.float32)
        consts = [gs.Constant(n, np.array(v, np.int64)) for n, v in (("s", [0]), ("e", [64]), ("a", [2]))]
        graph.nodes.append(gs.Node("Slice", "crop", inputs=[x, *consts], outputs=[cropped]))
        for node in list(x.outputs):
            if node.name != "crop":
                node.inputs[node.inputs.index(x)] = cropped
        return PassResult(changed=1)


class KeepBatchZero(Pass):
    """Computes batch element 0 and repeats it: exact at batch 1, wrong at batch 3."""

    name = "keep-batch-zero"
    fixes = "nothing: a wrong pass"

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        x = graph.inputs[0]
        first, shape, spread = (gs.Variable(n, dtype=d) for n, d in (("first", np.float32), ("shape", np.int64),
                                                                          ("spread", np.float32)))
        graph.nodes += [gs.Node("Gather", "first", {"axis": 0}, [x, gs.Constant("zero", np.array([0], np.int64))], [first]),
                        gs.Node("Shape", "shape", inputs=[x], outputs=[shape]),
                        gs.Node("Expand", "spread", inputs=[first, shape], outputs=[spread])]
        for node in list(x.outputs):
            if node.name not in ("first", "shape"):
                node.inputs[node.inputs.index(x)] = spread
        return PassResult(changed=1)


@pytest.mark.parametrize("model_name, wrong, pattern", [
    ("conv", ScaleFirstWeight(1.5), r"output y changed at the declared sizes"),
    ("conv", ScaleFirstWeight(1.00005), r"output y changed at the declared sizes \(max abs diff .*, [0-9.e-]+ of its scale"),
    ("audio-reflect-onnx", CropTime(), r"output y changed at batch 1, dynamic dims 65"),
    ("detector-dynamic-onnx", KeepBatchZero(), r"output y changed at batch 3, dynamic dims 32"),
])
def test_wrong_passes_are_rejected(model_name: str, wrong: Pass, pattern: str) -> None:
    model = conv_relu_model() if model_name == "conv" else zoo(model_name)
    fixed, report = run_passes(model, [wrong], PassContext(opset=17), gate=NumericGate(model), max_rounds=6)
    (rejected,) = report.records
    assert rejected.status == "rejected" and rejected.round == 1, rejected
    assert re.search(pattern, rejected.reason), rejected.reason
    assert [n.op_type for n in fixed.graph.node] == [n.op_type for n in model.graph.node]


def test_a_tiny_nudge_every_round_never_accumulates_past_the_gate() -> None:
    model = conv_relu_model()
    _, report = run_passes(model, [ScaleFirstWeight(1.000005)], PassContext(opset=17), gate=NumericGate(model))
    # 5e-6 relative is within float32 rounding room, but the gate compares every round with the input's
    # outputs at a fixed tolerance, so the drift it lets through is bounded by that tolerance.
    statuses = [r.status for r in report.records]
    assert statuses[-1] == "rejected" and statuses.count("rejected") == 1
    accepted = statuses.count("applied")
    assert 1.000005 ** accepted - 1 < 2e-5  # atol + rtol of float32 outputs, relative to the output's scale


def test_tolerance_follows_the_output_dtype() -> None:
    assert tolerance_for(np.zeros(1, np.float32)).rtol == 1e-5
    assert tolerance_for(np.zeros(1, np.float16)).rtol == 2e-3
    assert tolerance_for(np.zeros(1, np.int64)).atol == 0.0


def test_a_dim_stored_as_minus_one_is_dynamic() -> None:
    model = make_model([helper.make_node("Relu", ["x"], ["y"])], [value("x", [1, 3])], [value("y", [1, 3])])
    model.graph.input[0].type.tensor_type.shape.dim[1].dim_value = -1
    assert specs_from_model(model)[0].shape == (1, None)
    assert NumericGate(model).sizes == ["dynamic dims 8", "dynamic dims 9"]


def _unrunnable():
    """A dilated Conv with auto_pad=SAME_UPPER: onnxruntime refuses it at every size."""
    w = np.random.default_rng(0).standard_normal((2, 1, 3, 3)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "W"], ["c"], auto_pad="SAME_UPPER", dilations=[2, 2])
    relu = helper.make_node("Relu", ["c"], ["y"])
    return make_model([node, relu], [value("x", [1, 1, 9, 9])], [value("y", [1, 2, 9, 9])], [init("W", w)])


def _fix(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    source = save_model(_unrunnable(), tmp_path / "in.onnx")
    return subprocess.run([sys.executable, "-m", "onnxmend", "fix", str(source), "-o", str(tmp_path / "out.onnx"), *args],
                          capture_output=True, text=True)


def test_fix_that_cannot_be_verified_says_so_in_the_table_and_exits_three(tmp_path: Path) -> None:
    result = _fix(tmp_path)
    assert result.returncode == 3, result.stderr
    assert "not verified" in result.stdout and "NOT VERIFIED" in result.stdout
    assert re.search(r"cannot run at any input size tried", result.stdout)
    data = json.loads(_fix(tmp_path, "--json").stdout)
    assert data["verified"] is False and data["unverified_reason"].startswith("the input graph cannot run")


def test_no_verify_is_the_users_choice_and_exits_zero(tmp_path: Path) -> None:
    assert _fix(tmp_path, "--no-verify").returncode == 0


def _affine(scale: float, shift: float):
    """y = x·scale + shift on a [2, 3] input: scale 0 gives a constant output, NaN a NaN one."""
    nodes = [helper.make_node("Mul", ["x", "s"], ["t"]), helper.make_node("Add", ["t", "c"], ["y"])]
    return make_model(nodes, [value("x", [2, 3])], [value("y", [2, 3])],
                      [init("s", np.asarray(scale, np.float32)), init("c", np.asarray(shift, np.float32))])


@pytest.mark.parametrize("reference, rewrite, why", [
    ((0.0, 0.0), (0.0, 1.0), "is near zero"),  # an all-zero output made all ones
    ((0.0, 5.0), (0.0, 6.0), "is near constant"),
    ((float("nan"), 0.0), (0.0, 0.0), "contains NaN or Inf"),  # NaN made finite
    ((1.0, float("inf")), (1.0, 0.0), "contains NaN or Inf"),
])
def test_a_zero_constant_or_non_finite_reference_still_has_to_come_out_the_same(reference, rewrite, why) -> None:
    # Such references make a parity verdict "degenerate"; the gate took that for a pass and let any rewrite
    # of such an output through.
    gate = NumericGate(_affine(*reference))
    assert re.search(f"output y changed at .*{why}", gate.check(_affine(*rewrite)))
    assert gate.check(_affine(*reference)) == ""


def _endless_loop() -> onnx.ModelProto:
    """y = x + 2^62 by a Loop that adds 1 per iteration: onnxruntime never finishes it."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["v_in", "one"], ["v_out"])],
        "body", [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                 helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []), value("v_in", [1, 4])],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), value("v_out", [1, 4])],
        [init("one", np.ones((), np.float32))])
    nodes = [helper.make_node("Loop", ["trip", "cond", "x"], ["y"], body=body), helper.make_node("Relu", ["y"], ["z"])]
    inits = [init("trip", np.asarray(2**62, np.int64)), init("cond", np.asarray(True))]
    return make_model(nodes, [value("x", [1, 4])], [value("z", [1, 4])], inits)


def test_a_reference_run_that_never_ends_is_stopped_at_the_timeout(tmp_path: Path) -> None:
    source = save_model(_endless_loop(), tmp_path / "loop.onnx")
    result = subprocess.run([sys.executable, "-m", "onnxmend", "fix", str(source), "-o", str(tmp_path / "out.onnx"),
                             "--timeout", "2", "--json"], capture_output=True, text=True, timeout=300)
    assert result.returncode == 3, result.stderr
    reason = json.loads(result.stdout)["unverified_reason"]
    assert reason == ("the input graph cannot run at any input size tried (the declared sizes: onnxruntime did not "
                      "finish running the input graph within 2 s; it was stopped)")


def test_references_taken_in_the_background_are_waited_for_where_they_are_asked() -> None:
    gate = NumericGate(_endless_loop(), timeout_s=2, background=True)
    assert gate.pending  # the constructor returned while onnxruntime still runs the 2 s reference
    assert gate.unavailable.endswith("onnxruntime did not finish running the input graph within 2 s; it was stopped)")
    assert not gate.pending and gate.plan.sets == []


def test_background_references_are_the_ones_taken_at_once() -> None:
    model = _conv_bn_chain(depth=3)
    at_once, behind = NumericGate(model), NumericGate(model, background=True)
    assert behind.sizes == at_once.sizes and len(behind.sizes) >= 1
    for a, b in zip(at_once.plan.sets, behind.plan.sets):
        assert a.outputs.keys() == b.outputs.keys()
        for name in a.outputs:
            np.testing.assert_array_equal(a.outputs[name], b.outputs[name])
    assert behind.check(model) == ""


def test_what_taking_references_in_the_background_raised_is_raised_where_they_are_asked() -> None:
    from onnxmend.core.errors import OnnxmendError

    model = _conv_bn_chain(depth=1)
    samples = [{"x": np.zeros((1, 3, 8, 8), np.float32)}]  # 3 channels where the graph takes 8
    gate = NumericGate(model, samples=samples, background=True)
    for ask in (lambda: gate.unavailable, lambda: gate.plan, lambda: gate.check(model)):
        with pytest.raises(OnnxmendError, match=r"^The input graph cannot run on loaded sample 0 \(InvalidArgument"):
            ask()
    gate.close()


def test_a_heavy_models_references_are_taken_at_once(monkeypatch) -> None:
    from onnxmend.runtime import gate as gate_module

    monkeypatch.setattr(gate_module, "is_heavy", lambda model: True)
    gate = NumericGate(_endless_loop(), timeout_s=2, background=True)
    assert not gate.pending and gate.unavailable  # taken (and timed out) before the constructor returned


def _conv_bn_chain(depth: int = 12, channels: int = 8, seed: int = 0) -> onnx.ModelProto:
    """Conv → BatchNormalization → Relu, ``depth`` times: onnxruntime's own optimiser folds every BN."""
    rng = np.random.default_rng(seed)
    nodes, inits, h = [], [], "x"
    for i in range(depth):
        w = rng.standard_normal((channels, channels, 3, 3)).astype(np.float32) * np.float32(0.3)
        inits += [init(f"w{i}", w), init(f"g{i}", rng.uniform(0.5, 1.5, channels).astype(np.float32)),
                  init(f"b{i}", rng.standard_normal(channels).astype(np.float32) * np.float32(0.1)),
                  init(f"m{i}", rng.standard_normal(channels).astype(np.float32) * np.float32(0.1)),
                  init(f"v{i}", rng.uniform(0.5, 2.0, channels).astype(np.float32))]
        nodes += [helper.make_node("Conv", [h, f"w{i}"], [f"c{i}"], pads=[1, 1, 1, 1]),
                  helper.make_node("BatchNormalization", [f"c{i}", f"g{i}", f"b{i}", f"m{i}", f"v{i}"], [f"n{i}"]),
                  helper.make_node("Relu", [f"n{i}"], [f"h{i}"])]
        h = f"h{i}"
    nodes.append(helper.make_node("Identity", [h], ["y"]))
    return make_model(nodes, [value("x", [1, channels, 8, 8])], [value("y", [1, channels, 8, 8])], inits)


def test_the_noise_floor_is_what_onnxruntimes_own_fusions_move_an_output() -> None:
    model = _conv_bn_chain()
    gate = NumericGate(model)
    assert gate.noise is None  # measured only when a rewrite first differs numerically
    floor = gate._noise_floor(model)
    assert 0.0 < floor["y"] < 1e-5  # the fused BNs round differently, by a few ulps of the scale


def test_the_floor_is_measured_once_on_the_first_numeric_difference() -> None:
    gate = NumericGate(conv_relu_model())
    assert gate.check(conv_relu_model()) == "" and gate.noise is None  # an exact rewrite costs no measurement
    assert "changed" in gate.check(_scaled(conv_relu_model(), 1.00005))
    assert gate.noise is not None and gate.noise["y"] < 1e-6
    assert gate.tolerance("y", np.zeros(1, np.float32)).atol == 1e-5


def test_a_floor_widens_that_outputs_tolerance_up_to_the_cap_and_never_integers() -> None:
    gate = NumericGate(conv_relu_model())
    gate.noise = {"y": 5e-6}
    assert gate.tolerance("y", np.zeros(1, np.float32)).atol == pytest.approx(2e-5)
    gate.noise = {"y": 1.0}  # a graph the optimiser changes a lot cannot open the gate wide
    assert gate.tolerance("y", np.zeros(1, np.float32)).atol == 1e-4
    assert gate.tolerance("y", np.zeros(1, np.int64)).atol == 0.0
    assert gate.tolerance("other", np.zeros(1, np.float32)).atol == 1e-5
    # the 5e-5 nudge of a weight is still rejected on a graph whose floor is tiny
    assert "allowed 1e-05" in NumericGate(conv_relu_model()).check(_scaled(conv_relu_model(), 1.00005))


def _scaled(model: onnx.ModelProto, factor: float) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(model)
    w = onnx.numpy_helper.to_array(out.graph.initializer[0]) * np.float32(factor)
    out.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(w.astype(np.float32), out.graph.initializer[0].name))
    return out
