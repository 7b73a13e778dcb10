"""Dynamic quantization: plan selection, the quantizer on planned nodes, the gate, the artifact folder, the CLI."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper, numpy_helper

from onnxmend.cli.commands.quantize import command
from onnxmend.core import fileio
from onnxmend.core.errors import OnnxmendError
from onnxmend.flows.quantize import quantize
from onnxmend.runtime import session as session_mod
from onnxmend.runtime.compare import Comparator, Thresholds
from onnxmend.runtime.quantize import plan as qp
from onnxmend.runtime.quantize import quantizer as q
from onnxmend.runtime.quantize.performance import node_placement, parse_profile

AVX2 = qp.CpuInfo(x86=True, vnni_flags=())
VNNI = qp.CpuInfo(x86=True, vnni_flags=("avx512_vnni",))
FAST = {"batches": 2, "latency_runs": 2}


def _model(nodes, inputs, outputs, inits) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "g", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what onnxruntime 1.31 accepts
    onnx.checker.check_model(model)
    return model


def _w(rng: np.random.Generator, *shape: int, name: str) -> TensorProto:
    return numpy_helper.from_array((rng.standard_normal(shape) * 0.2).astype(np.float32), name)


def encoder_like() -> onnx.ModelProto:
    """ids → Gather(embedding) → MatMul(W) → Relu → MatMul(act×act) → Gemm(transB) → [1, 10] logits."""
    rng = np.random.default_rng(0)
    inits = [_w(rng, 64, 32, name="emb"), _w(rng, 32, 32, name="w1"), _w(rng, 10, 32, name="w2"),
             _w(rng, 10, name="b2"), numpy_helper.from_array(np.array([1, 32], dtype=np.int64), "flat")]
    nodes = [
        helper.make_node("Gather", ["emb", "ids"], ["e"], name="embed"),
        helper.make_node("MatMul", ["e", "w1"], ["h"], name="proj"),
        helper.make_node("Relu", ["h"], ["r"], name="relu"),
        helper.make_node("Transpose", ["r"], ["rt"], name="tr", perm=[1, 0]),
        helper.make_node("MatMul", ["rt", "r"], ["gram"], name="scores"),
        helper.make_node("ReduceMean", ["gram"], ["m"], name="mean", axes=[0], keepdims=1),
        helper.make_node("Reshape", ["m", "flat"], ["f"], name="flatten"),
        helper.make_node("Gemm", ["f", "w2", "b2"], ["logits"], name="head", transB=1),
    ]
    return _model(nodes, [helper.make_tensor_value_info("ids", TensorProto.INT64, [8])],
                  [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [1, 10])], inits)


def convnet() -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    inits = [_w(rng, 8, 3, 3, 3, name="w1"), _w(rng, 8, 1, 3, 3, name="wd"), _w(rng, 4, 8, 1, 1, name="w2")]
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], name="conv1", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["a"], ["b"], name="relu"),
        helper.make_node("Conv", ["b", "wd"], ["c"], name="dw", group=8, pads=[1, 1, 1, 1]),
        helper.make_node("Conv", ["c", "w2"], ["y"], name="pw"),
    ]
    return _model(nodes, [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
                  [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4, 8, 8])], inits)


def _choices(plan: qp.QuantPlan) -> dict[str, qp.NodeChoice]:
    return {n.name: n for n in plan.nodes}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def encoder_file(tmp_path: Path) -> Path:
    path = tmp_path / "in" / "encoder.onnx"
    path.parent.mkdir()
    onnx.save(encoder_like(), str(path))
    return path


# --- plan -------------------------------------------------------------------------------------------------


def test_cpu_plan_quantizes_constant_weights_only() -> None:
    plan = qp.build_plan(encoder_like(), "cpu", cpu=AVX2)
    nodes = _choices(plan)
    assert [n.name for n in plan.selected] == ["embed", "proj", "head"]
    assert re.search(r"not a constant float initializer", nodes["scores"].reason)
    assert (plan.weight_type, plan.per_channel, plan.reduce_range) == ("int8", False, True)
    assert re.search(r"without VNNI", plan.reasons["reduce_range"])
    assert plan.risks == []


def test_vnni_turns_reduce_range_off_and_flag_overrides() -> None:
    assert qp.build_plan(encoder_like(), "cpu", cpu=VNNI).reduce_range is False
    assert qp.build_plan(encoder_like(), "cpu", cpu=qp.CpuInfo(False, ())).reduce_range is False
    forced = qp.build_plan(encoder_like(), "cpu", qp.PlanOverrides(reduce_range=False), cpu=AVX2)
    assert forced.reduce_range is False and forced.reasons["reduce_range"].startswith("forced")


def test_detect_cpu_reads_vnni_flags() -> None:
    text = "processor : 0\nflags\t\t: fpu sse avx2 avx512f avx512_vnni\n"
    assert qp.detect_cpu(text, "x86_64") == qp.CpuInfo(True, ("avx512_vnni",))
    assert qp.detect_cpu("flags : avx2 fma\n", "x86_64").vnni is False
    assert qp.detect_cpu("Features : asimd asimddp\n", "aarch64").x86 is False


def test_conv_excluded_by_default_on_cpu_and_cuda() -> None:
    for provider in ("cpu", "cuda"):
        plan = qp.build_plan(convnet(), provider, cpu=AVX2)  # type: ignore[arg-type]
        assert plan.selected == []
        assert all(re.search(r"Conv is not in the op types", n.reason) for n in plan.nodes)
    assert any(re.search(r"run them on CPU", r) for r in qp.build_plan(convnet(), "cuda", cpu=AVX2).risks)


def test_conv_opt_in_states_risk_uses_uint8_and_keeps_depthwise_per_tensor() -> None:
    plan = qp.build_plan(convnet(), "cpu", qp.PlanOverrides(ops=("Conv",), per_channel=True), cpu=AVX2)
    nodes = _choices(plan)
    assert [n.name for n in plan.selected] == ["conv1", "dw", "pw"]
    assert re.search(r"depthwise.*never per channel", nodes["dw"].reason)
    assert not any(n.per_channel for n in plan.selected)
    assert plan.weight_type == "uint8"
    assert any(re.search(r"slower than fp32 on CPU", r) for r in plan.risks)
    cuda = qp.build_plan(convnet(), "cuda", qp.PlanOverrides(ops=("Conv",)), cpu=AVX2)
    assert cuda.weight_type == "int8" and any(re.search(r"no CUDA kernel", r) for r in cuda.risks)


def test_depthwise_weight_is_quantized_per_tensor() -> None:
    plan = qp.build_plan(convnet(), "cpu", qp.PlanOverrides(ops=("Conv",), per_channel=True), cpu=AVX2)
    int8 = q.run_quantizer(convnet(), plan)
    onnx.checker.check_model(int8)
    ops = [n.op_type for n in int8.graph.node]
    assert ops.count("ConvInteger") == 3 and "Conv" not in ops
    scales = {t.name: list(t.dims) for t in int8.graph.initializer if t.name.endswith("_scale")}
    assert scales["wd_scale"] == []


def test_exclude_nodes_and_ops_overrides() -> None:
    plan = qp.build_plan(encoder_like(), "cpu", qp.PlanOverrides(ops=("MatMul",), exclude_nodes=("proj",)), cpu=AVX2)
    nodes = _choices(plan)
    assert plan.selected == []
    assert re.search(r"excluded by --exclude-nodes", nodes["proj"].reason)
    assert re.search(r"Gemm is not in the op types", nodes["head"].reason)
    with pytest.raises(OnnxmendError, match=r"does not have"):
        qp.build_plan(encoder_like(), "cpu", qp.PlanOverrides(exclude_nodes=("nope",)), cpu=AVX2)
    with pytest.raises(OnnxmendError, match=r"Cannot dynamically quantize op type\(s\) Softmax"):
        qp.build_plan(encoder_like(), "cpu", qp.PlanOverrides(ops=("Softmax",)), cpu=AVX2)


def test_gemm_with_scaling_and_non_table_gather_are_not_quantized() -> None:
    model = encoder_like()
    head = next(n for n in model.graph.node if n.name == "head")
    head.attribute.append(helper.make_attribute("alpha", 0.5))
    rng = np.random.default_rng(2)
    model.graph.initializer.append(_w(rng, 4, 4, 4, name="cube"))
    model.graph.node.append(helper.make_node("Gather", ["cube", "ids"], ["cube_rows"], name="cube_gather"))
    nodes = _choices(qp.build_plan(model, "cpu", qp.PlanOverrides(per_channel=True), cpu=AVX2))
    assert re.search(r"alpha/beta != 1", nodes["head"].reason) and not nodes["head"].quantize
    assert re.search(r"rank 3, not an embedding table", nodes["cube_gather"].reason)
    assert nodes["proj"].per_channel and not nodes["embed"].per_channel


def test_empty_plan_is_an_error_not_a_quantize_everything() -> None:
    plan = qp.build_plan(convnet(), "cpu", cpu=AVX2)
    with pytest.raises(OnnxmendError, match=r"selects no node"):
        q.run_quantizer(convnet(), plan)


def test_quantizer_touches_exactly_the_planned_nodes() -> None:
    plan = qp.build_plan(encoder_like(), "cpu", qp.PlanOverrides(exclude_nodes=("head",)), cpu=AVX2)
    int8 = q.run_quantizer(encoder_like(), plan)
    onnx.checker.check_model(int8)
    ops = {n.name: n.op_type for n in int8.graph.node}
    assert list(ops.values()).count("MatMulInteger") == 1
    # ORT rewrites every eligible Gemm to MatMul + Add in dynamic mode; the excluded one stays float.
    assert ops["head_MatMul"] == "MatMul" and ops["scores"] == "MatMul" and "Gemm" not in ops.values()


def test_provider_resolution(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(session_mod, "cuda_unavailable_reason", lambda: "onnxruntime has no CUDA provider here")
    assert q.resolve_provider("auto") == ("cpu", "CPU because onnxruntime has no CUDA provider here")
    with pytest.raises(OnnxmendError, match=r"--provider cuda was given but onnxruntime has no CUDA"):
        q.resolve_provider("cuda")
    monkeypatch.setattr(session_mod, "cuda_unavailable_reason", lambda: None)
    assert q.resolve_provider("auto")[0] == "cuda"
    assert q.resolve_provider("cpu")[0] == "cpu"


def test_preprocess_falls_back_and_says_so(monkeypatch: pytest.MonkeyPatch, encoder_file: Path) -> None:
    import onnxruntime.quantization.shape_inference as shape_inference

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("symbolic shape inference exploded")

    monkeypatch.setattr(shape_inference, "quant_pre_process", broken)
    prepared = q.preprocess(encoder_file)
    assert prepared.method == "onnx.shape_inference"
    assert len(prepared.notes) == 3 and re.search(r"skip_optimization\) failed .*exploded", prepared.notes[1])


# --- gate -------------------------------------------------------------------------------------------------


def test_accuracy_metrics() -> None:
    ref = np.array([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    output_accuracy = Comparator(Thresholds()).compare_arrays
    exact = output_accuracy("y", ref, ref)
    assert (exact.cosine, exact.sqnr_db, exact.max_abs, exact.top1) == (1.0, None, 0.0, 1.0)
    noisy = output_accuracy("y", ref, ref + np.array([[0.0, 0.0, -1.5], [0.0, 0.0, 0.0]]))
    assert noisy.top1 == 0.5 and noisy.max_abs == 1.5
    assert noisy.sqnr_db == pytest.approx(10 * np.log10(28 / 2.25))
    assert output_accuracy("v", ref.ravel(), ref.ravel()).top1 is None


def test_gate_thresholds_fail_with_reasons() -> None:
    ref = [{"y": np.array([[1.0, 2.0, 3.0]])}]
    act = [{"y": np.array([[1.0, 2.5, 2.0]])}]
    thresholds = Thresholds(min_cosine=0.999, min_sqnr=40, min_top1=1.0)
    report = Comparator(thresholds, reference="fp32 ONNX").compare_batches(ref, act)
    assert not report.passed
    (failure,) = report.failures
    assert failure.startswith("y vs fp32 ONNX: ")
    assert [part.split()[0] for part in failure.split(": ", 1)[1].split("; ")] == ["cosine", "SQNR", "top-1"]


def test_placement_on_cpu_and_profile_parsing() -> None:
    placement = node_placement(encoder_like(), "cpu", {"ids": np.arange(8, dtype=np.int64)})
    assert placement.provider == "CPUExecutionProvider" and placement.cpu_fallback == []
    assert "embed" in placement.nodes_by_provider["CPUExecutionProvider"]
    events = [
        {"cat": "Node", "name": "mm_kernel_time", "args": {"provider": "CUDAExecutionProvider"}},
        {"cat": "Node", "name": "dq_kernel_time", "args": {"provider": "CPUExecutionProvider"}},
        {"cat": "Node", "name": "dq_fence_before", "args": {"provider": "CPUExecutionProvider"}},
        {"cat": "Session", "name": "model_run", "args": {}},
    ]
    assert parse_profile(events) == {"CUDAExecutionProvider": ["mm"], "CPUExecutionProvider": ["dq"]}


# --- artifact folder ----------------------------------------------------------------------------------------


def test_artifact_folder_manifest_hashes_and_input_untouched(encoder_file: Path, tmp_path: Path) -> None:
    before = _sha(encoder_file)
    out = tmp_path / "artifact"
    result = quantize(encoder_file, out, provider="cpu", layers=True, allow_no_gain=True, **FAST)
    assert _sha(encoder_file) == before
    assert result.passed and result.contents.accurate  # a toy model's int8 speed is judged in test_quantize_worth
    assert sorted(p.name for p in out.iterdir()) == [".onnxmend", "manifest.json", "model.int8.onnx", "model.onnx", "report.md"]
    manifest = json.loads((out / "manifest.json").read_text())
    for name, entry in manifest["files"].items():
        assert entry == {"sha256": _sha(out / name), "bytes": (out / name).stat().st_size}
    assert manifest["files"]["model.onnx"]["sha256"] == before
    assert manifest["plan"]["selected_count"] == 3 and manifest["accuracy"]["passed"] is True
    assert manifest["opset"]["ai.onnx"] == 17 and "onnxruntime" in " ".join(manifest["versions"])
    assert manifest["latency"]["runs"] == 2 and manifest["latency"]["threads"] == 2
    assert any(layer["tensor"] == "h" for layer in manifest["accuracy"]["layers"])
    int8 = onnx.load(str(out / "model.int8.onnx"))
    assert [n.op_type for n in int8.graph.node].count("MatMulInteger") == 2
    # a toy model's int8 speed is noise: the verdict is PASS or an accepted NO GAIN, never FAIL
    assert re.search(r"Gate: (PASS|NO GAIN \(accepted with --allow-no-gain\))", (out / "report.md").read_text())


def test_output_in_input_folder_never_overwrites_input(tmp_path: Path) -> None:
    named = tmp_path / "model.onnx"
    onnx.save(encoder_like(), str(named))
    before = _sha(named)
    (tmp_path / "report.md").write_text("convert's own report")
    quantize(named, tmp_path, provider="cpu", report_name="quantize.md", **FAST)
    assert _sha(named) == before and (tmp_path / "model.int8.onnx").exists()
    assert (tmp_path / "report.md").read_text() == "convert's own report"
    assert "quantize.md" in json.loads((tmp_path / "manifest.json").read_text())["files"]
    other = tmp_path / "sub" / "encoder.onnx"
    other.parent.mkdir()
    onnx.save(encoder_like(), str(other))
    quantize(other, other.parent, provider="cpu", **FAST)
    assert _sha(other) == before == _sha(other.parent / "model.onnx")
    clash = tmp_path / "c" / "model.int8.onnx"
    clash.parent.mkdir()
    onnx.save(encoder_like(), str(clash))
    with pytest.raises(OnnxmendError, match=r"would overwrite the input model"):
        quantize(clash, clash.parent, provider="cpu", **FAST)
    assert _sha(clash) == before


def test_large_models_are_saved_with_external_data(
    monkeypatch: pytest.MonkeyPatch, encoder_file: Path, tmp_path: Path,
) -> None:
    monkeypatch.setattr(fileio, "EXTERNAL_DATA_THRESHOLD", 2000)
    out = tmp_path / "big"
    result = quantize(encoder_file, out, provider="cpu", **FAST)
    data = out / "model.int8.onnx.data"
    header = onnx.load(str(out / "model.int8.onnx"), load_external_data=False)
    assert data.exists() and any(t.data_location == TensorProto.EXTERNAL for t in header.graph.initializer)
    entry = result.manifest["files"]["model.int8.onnx.data"]  # type: ignore[index]
    assert entry["sha256"] == _sha(data)
    reloaded = onnx.load(str(out / "model.int8.onnx"))
    feeds = {"ids": np.arange(8, dtype=np.int64)}
    got = session_mod.create_session(reloaded, provider="cpu", opt_level="disable").run(feeds)["logits"]
    fp32 = session_mod.create_session(encoder_like(), provider="cpu", opt_level="disable").run(feeds)["logits"]
    assert Comparator(Thresholds()).compare_arrays("logits", fp32, got).cosine > 0.99


# --- CLI --------------------------------------------------------------------------------------------------


def test_cli_failing_gate_exits_1_and_still_writes_report(encoder_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "fail"
    result = CliRunner().invoke(command, [str(encoder_file), "-o", str(out), "--provider", "cpu",
                                          "--min-sqnr", "200", "--runs", "2", "--batches", "1"])
    assert result.exit_code == 1, result.output
    assert "Gate: FAIL" in (out / "report.md").read_text()
    assert json.loads((out / "manifest.json").read_text())["accuracy"]["passed"] is False
    assert "Quantization plan" in result.output and "FAIL" in result.output


def test_cli_json_prints_the_manifest(encoder_file: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(command, [str(encoder_file), "-o", str(tmp_path / "j"), "--provider", "cpu",
                                          "--json", "--runs", "0", "--batches", "1", "--ops", "MatMul,Gemm",
                                          "--allow-no-gain"])
    assert result.exit_code == 0, result.output
    manifest = json.loads(result.output)
    assert manifest["verdict"] == "no-gain" and manifest["passed"] is True  # the embedding table stays float
    assert manifest["plan"]["op_types"] == ["MatMul", "Gemm"] and manifest["latency"] is None
    assert [n["name"] for n in manifest["plan"]["nodes"] if n["quantize"]] == ["proj", "head"]


@pytest.mark.parametrize("args, message", [
    (["--ops", "MatMul,Softmax"], r"Cannot dynamically quantize op type\(s\) Softmax"),
    (["--weight-type", "int4"], r"'int4' is not one of 'int8', 'uint8'"),
    (["--exclude-nodes", "ghost"], r"ghost, which the pre-processed graph does not have"),
])
def test_cli_rejects_bad_flags_with_exit_2(encoder_file: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(command, [str(encoder_file), "-o", str(tmp_path / "o"), "--provider", "cpu", *args])
    assert result.exit_code == 2, result.output
    assert re.search(message, result.output.replace("\n", " "))


def test_cli_rejects_missing_and_non_onnx_files(tmp_path: Path) -> None:
    missing = CliRunner().invoke(command, [str(tmp_path / "nope.onnx"), "-o", str(tmp_path / "o")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a protobuf")
    bad = CliRunner().invoke(command, [str(text), "-o", str(tmp_path / "o"), "--provider", "cpu"])
    assert bad.exit_code == 2 and re.search(r"not (a readable )?ONNX model", bad.output)


def test_cli_cuda_requested_without_cuda_exits_2(
    monkeypatch: pytest.MonkeyPatch, encoder_file: Path, tmp_path: Path,
) -> None:
    monkeypatch.setattr(session_mod, "cuda_unavailable_reason", lambda: "onnxruntime has no CUDA provider here")
    result = CliRunner().invoke(command, [str(encoder_file), "-o", str(tmp_path / "o"), "--provider", "cuda"])
    assert result.exit_code == 2 and "--provider cuda was given" in result.output
