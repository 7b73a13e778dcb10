"""An int8 artifact is judged by size and speed as well as accuracy, and the graph it quantizes is prepared so
that 1x1 Convs (a fixed graph's Dense layers) quantize as fast MatMuls instead of staying in float."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from onnxmend.cli.commands.quantize import command
from onnxmend.flows.quantize import quantize
from onnxmend.runtime.quantize import plan as qp
from onnxmend.runtime.quantize.performance import Latency
from onnxmend.runtime.quantize.plan import PlanOverrides
from onnxmend.runtime.quantize.worth import MAX_SIZE_RATIO, judge, weight_share

QUICK = {"batches": 1, "latency_runs": 0, "provider": "cpu"}


def _w(rng: np.random.Generator, *shape: int, name: str) -> TensorProto:
    return numpy_helper.from_array((rng.standard_normal(shape) / np.sqrt(np.prod(shape[1:]))).astype(np.float32), name)


def _model(nodes, inits, x: list[int], y: list[int]) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, x)],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, y)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what onnxruntime accepts
    onnx.checker.check_model(model)
    return model


def big_conv_tiny_gemm() -> onnx.ModelProto:
    """A 3x3 Conv holds 99 % of the weights; the only quantizable node is a 64→4 Gemm head."""
    rng = np.random.default_rng(0)
    inits = [_w(rng, 64, 64, 3, 3, name="wc"), _w(rng, 4, 64, name="wh"),
             numpy_helper.from_array(np.array([1, 64], np.int64), "flat")]
    nodes = [helper.make_node("Conv", ["x", "wc"], ["c"], name="conv", pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["p"], name="pool"),
             helper.make_node("Reshape", ["p", "flat"], ["f"], name="flatten"),
             helper.make_node("Gemm", ["f", "wh"], ["y"], name="head", transB=1)]
    return _model(nodes, inits, [1, 64, 8, 8], [1, 4])


def pointwise_block() -> onnx.ModelProto:
    """A depthwise 3x3 then two 1x1 Convs 32→128→32 (a ConvNeXt block's shape, as the fix preset leaves it)."""
    rng = np.random.default_rng(1)
    inits = [_w(rng, 32, 1, 3, 3, name="wd"), _w(rng, 128, 32, 1, 1, name="w1"), _w(rng, 32, 128, 1, 1, name="w2"),
             numpy_helper.from_array(rng.standard_normal(128).astype(np.float32) * 0.1, "b1")]
    nodes = [helper.make_node("Conv", ["x", "wd"], ["d"], name="dw", group=32, pads=[1, 1, 1, 1]),
             helper.make_node("Conv", ["d", "w1", "b1"], ["h"], name="pw1"),
             helper.make_node("Relu", ["h"], ["r"], name="act"),
             helper.make_node("Conv", ["r", "w2"], ["y"], name="pw2")]
    return _model(nodes, inits, [1, 32, 14, 14], [1, 32, 14, 14])


def _latency(fp32_ms: float, int8_ms: float) -> Latency:
    return Latency(fp32_ms, int8_ms, runs=20, threads=2, provider="CPUExecutionProvider")


def test_an_artifact_that_is_not_smaller_falls_short_with_the_share_quantized() -> None:
    model = big_conv_tiny_gemm()
    plan = qp.build_plan(model, "cpu")
    share = weight_share(model, plan)
    assert share == pytest.approx(4 * 64 / (64 * 64 * 9 + 4 * 64))
    worth = judge(0.99, share, plan, _latency(1.0, 0.8))
    assert not worth.worth_shipping
    (shortfall,) = worth.shortfalls
    assert "0.99× the fp32 files" in shortfall and "1 of 2 candidate nodes, 0.7% of the weights" in shortfall


def test_an_artifact_slower_than_fp32_falls_short_with_the_times() -> None:
    plan = qp.build_plan(pointwise_block(), "cpu")
    worth = judge(0.3, 0.9, plan, _latency(1.0, 1.4))
    (shortfall,) = worth.shortfalls
    assert "int8 runs at 0.71× the fp32 graph's speed on CPUExecutionProvider" in shortfall
    assert "fp32 1.00 ms, int8 1.40 ms, median of 20 interleaved runs" in shortfall


def test_small_and_fast_is_worth_shipping_and_untimed_speed_is_said() -> None:
    plan = qp.build_plan(pointwise_block(), "cpu")
    assert judge(MAX_SIZE_RATIO, 0.9, plan, _latency(1.0, 0.96)).worth_shipping  # within the 5 % noise margin
    untimed = judge(0.3, 0.9, plan, None)
    assert untimed.worth_shipping and untimed.notes == ["speed not measured (--runs 0), so not judged"]


@pytest.fixture
def tiny_gemm(tmp_path: Path) -> Path:
    path = tmp_path / "tiny_gemm.onnx"
    onnx.save(big_conv_tiny_gemm(), path)
    return path


def test_quantizing_one_tiny_gemm_is_no_gain_and_exits_1(tiny_gemm: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(command, [str(tiny_gemm), "-o", str(tmp_path / "q"), "--runs", "0", "--batches", "1"])
    assert result.exit_code == 1, result.output
    assert "NO GAIN" in result.output and "not worth shipping (--allow-no-gain accepts it)" in result.output
    manifest = json.loads((tmp_path / "q" / "manifest.json").read_text())
    assert manifest["verdict"] == "no-gain" and manifest["passed"] is False
    assert manifest["accuracy"]["passed"] is True and manifest["worth"]["size_ratio"] > MAX_SIZE_RATIO
    assert "Gate: NO GAIN" in (tmp_path / "q" / "report.md").read_text()


def test_allow_no_gain_accepts_it_and_still_says_so(tiny_gemm: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(command, [str(tiny_gemm), "-o", str(tmp_path / "q"), "--runs", "0", "--batches", "1",
                                          "--allow-no-gain"])
    assert result.exit_code == 0, result.output
    assert "NO GAIN" in result.output and "accepted (--allow-no-gain)" in result.output
    assert json.loads((tmp_path / "q" / "manifest.json").read_text())["verdict"] == "no-gain"


def test_pointwise_convs_are_quantized_as_matmuls_named_after_their_conv(tmp_path: Path) -> None:
    source = tmp_path / "block.onnx"
    onnx.save(pointwise_block(), source)
    result = quantize(source, tmp_path / "q", **QUICK)
    chosen = {n.name: n for n in result.plan.selected}
    # quant_pre_process fuses pw1's MatMul and bias Add into a Gemm named after the MatMul
    assert sorted(chosen) == ["pw1/MatMul/MatMulAddFusion", "pw2/MatMul"], [n.name for n in result.plan.nodes]
    assert chosen["pw1/MatMul/MatMulAddFusion"].reason.endswith("the 1x1 Conv pw1 of the input, as a MatMul")
    assert chosen["pw2/MatMul"].reason.endswith("the 1x1 Conv pw2 of the input, as a MatMul")
    (note,) = result.contents.prepared
    assert note.startswith("2 1x1 Convs spelled as MatMuls") and "gated; 1 other Convs stay in float" in note
    int8 = onnx.load(str(tmp_path / "q" / "model.int8.onnx"))
    ops = [n.op_type for n in int8.graph.node]
    assert ops.count("MatMulInteger") == 2 and ops.count("Conv") == 1 and "ConvInteger" not in ops
    assert result.contents.accurate and result.contents.worth.size_ratio < 0.45  # type: ignore[union-attr]
    assert onnx.load(str(source)) == pointwise_block()  # the input is never modified
    assert result.contents.verdict == "pass"


def test_quantizing_conv_itself_skips_the_preparation(tmp_path: Path) -> None:
    source = tmp_path / "block.onnx"
    onnx.save(pointwise_block(), source)
    result = quantize(source, tmp_path / "q", PlanOverrides(ops=("Conv",)), allow_no_gain=True, **QUICK)
    assert result.contents.prepared == []
    assert sorted(n.name for n in result.plan.selected) == ["dw", "pw1", "pw2"]


def test_nothing_to_quantize_is_no_gain_and_nothing_is_written(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    only_conv = _model([helper.make_node("Conv", ["x", "w"], ["y"], name="conv3x3", pads=[1, 1, 1, 1])],
                       [_w(rng, 8, 4, 3, 3, name="w")], [1, 4, 6, 6], [1, 8, 6, 6])
    onnx.save(only_conv, tmp_path / "conv.onnx")
    for extra, code in (([], 1), (["--allow-no-gain"], 0)):
        result = CliRunner().invoke(command, [str(tmp_path / "conv.onnx"), "-o", str(tmp_path / "q"), *extra])
        assert result.exit_code == code, result.output
        assert "NO GAIN The quantization plan selects no node" in result.output and "Nothing written." in result.output
        assert not (tmp_path / "q" / "model.int8.onnx").exists()


def spread_columns() -> onnx.ModelProto:
    """x @ (W · diag(s)) · (1/s): the weight's columns span three decades, and every one matters to y."""
    rng = np.random.default_rng(3)
    scales = np.logspace(0, -3, 64).astype(np.float32)
    weight = (rng.standard_normal((32, 64)) / np.sqrt(32)).astype(np.float32) * scales
    inits = [numpy_helper.from_array(weight, "w"), numpy_helper.from_array((1 / scales).astype(np.float32), "inv")]
    nodes = [helper.make_node("MatMul", ["x", "w"], ["h"], name="proj"), helper.make_node("Mul", ["h", "inv"], ["y"])]
    return _model(nodes, inits, [4, 32], [4, 64])


def test_per_tensor_weights_that_miss_the_gate_are_requantized_per_channel(tmp_path: Path) -> None:
    onnx.save(spread_columns(), tmp_path / "spread.onnx")
    result = quantize(tmp_path / "spread.onnx", tmp_path / "q", allow_no_gain=True, **QUICK)
    assert result.contents.accurate and result.plan.per_channel
    assert result.plan.reasons["per_channel"].startswith("on: per-tensor weights missed the accuracy gate (y vs fp32 ONNX")
    (note,) = result.contents.prepared
    assert note.startswith("requantized with per-channel weights: cosine 0.")
    forced = quantize(tmp_path / "spread.onnx", tmp_path / "forced", PlanOverrides(per_channel=False),
                      allow_no_gain=True, **QUICK)
    assert not forced.contents.accurate and not forced.plan.per_channel and not forced.contents.prepared
