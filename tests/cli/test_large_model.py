"""A model with external data through ``onnxmend fix``: written with external data in the output's folder,
every untouched tensor byte-for-byte the same, the same outputs. The model is a few MB here (a file with
external data keeps it through ``fix`` whatever its size); ``bench/large_model.py --gb 2.2`` runs the same
check past protobuf's 2 GB limit."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from bench.large_model import build, round_trip, tensor_hashes
from onnxmend.core import fileio
from onnxmend.core.large import model_bytes

SIZE, WIDTH = 3_000_000, 128


def test_fix_keeps_external_data_and_every_untouched_tensor(tmp_path) -> None:
    result = round_trip(tmp_path / "rt", SIZE, WIDTH)
    assert result.exit_code == 0, result.fix_stdout_tail
    assert set(result.input_files) == {"model.onnx", "model.onnx.data"}
    assert set(result.output_files) == {"fixed.onnx", "fixed.onnx.data"}
    assert result.output_files["fixed.onnx.data"] >= SIZE > 20 * result.output_files["fixed.onnx"]
    assert result.hashes_compared == len(tensor_hashes(build(SIZE, WIDTH))) and result.hashes_compared > 90
    assert result.hashes_equal == result.hashes_compared
    assert result.outputs_equal and result.max_abs_diff == 0.0
    # The rewrite did happen: the Identity is gone and the constants folded.
    fixed = onnx.load(str(tmp_path / "rt" / "out" / "fixed.onnx"), load_external_data=False)
    assert "Identity" not in {n.op_type for n in fixed.graph.node}
    assert {entry.value for t in fixed.graph.initializer for entry in t.external_data if entry.key == "location"} == {
        "fixed.onnx.data"}


def test_the_external_data_threshold_is_a_parameter(tmp_path) -> None:
    model = build(SIZE, WIDTH)
    small = fileio.save_model(model, tmp_path / "a" / "m.onnx", external_threshold=model_bytes(model) + 1)
    large = fileio.save_model(model, tmp_path / "b" / "m.onnx", external_threshold=model_bytes(model))
    assert [p.name for p in small.parent.iterdir()] == ["m.onnx"]
    assert sorted(p.name for p in large.parent.iterdir()) == ["m.onnx", "m.onnx.data"]
    a, b = fileio.load_model(small), fileio.load_model(large)
    assert tensor_hashes(a) == tensor_hashes(b) == tensor_hashes(model)
    assert fileio.load_model_and_layout(large)[1] and not fileio.load_model_and_layout(small)[1]
    np.testing.assert_array_equal(onnx.numpy_helper.to_array(b.graph.initializer[0]),
                                  onnx.numpy_helper.to_array(model.graph.initializer[0]))


def test_fix_never_writes_over_a_data_file_it_did_not_write(tmp_path) -> None:
    from onnxmend.core.errors import OnnxmendError
    from onnxmend.flows.fix import fix

    source = fileio.save_model(build(SIZE, WIDTH), tmp_path / "in" / "m.onnx", external_threshold=0)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "m.onnx.data").write_text("the user's notes")
    with pytest.raises(OnnxmendError, match=r"m\.onnx\.data exists and was not written by onnxmend"):
        fix(source, tmp_path / "out" / "m.onnx", verify=False)
    assert (tmp_path / "out" / "m.onnx.data").read_text() == "the user's notes"
    fix(source, tmp_path / "out" / "m.onnx", verify=False, force=True)
    fix(source, tmp_path / "out" / "m.onnx", verify=False)  # its own output: replaced without --force


def test_a_heavy_model_is_fixed_with_its_weights_left_in_the_input_file(tmp_path, monkeypatch) -> None:
    """Past HEAVY_MODEL_BYTES ``fix`` reads big external weights only where a pass needs them: the loaded
    model holds references into the input's data file, the gate and the writer copy the bytes across, a fold
    reads the weight it folds, dedupe hashes them from the file; outputs and untouched tensors are equal."""
    import hashlib

    from onnx import TensorProto, helper, numpy_helper

    from onnxmend.core import large, lazy
    from onnxmend.flows.fix import fix
    from onnxmend.runtime.session import create_session

    monkeypatch.setattr(large, "HEAVY_MODEL_BYTES", 100_000)
    monkeypatch.setattr(fileio, "LAZY_MIN_BYTES", 1000)
    rng = np.random.default_rng(0)
    w1, w2 = (rng.standard_normal((256, 256), dtype=np.float32) / 16 for _ in range(2))
    nodes = [helper.make_node("MatMul", ["x", "w1"], ["a"]), helper.make_node("Transpose", ["w2"], ["w2t"]),
             helper.make_node("MatMul", ["a", "w2t"], ["b"]), helper.make_node("MatMul", ["b", "w3"], ["y"])]
    graph = helper.make_graph(nodes, "lazy", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 256])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 256])],
                              [numpy_helper.from_array(w1, "w1"), numpy_helper.from_array(w2, "w2"),
                               numpy_helper.from_array(w1.copy(), "w3")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    source = fileio.save_model(model, tmp_path / "in" / "model.onnx", external_threshold=0)
    files = {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in source.parent.iterdir()}

    loaded, external = fileio.load_model_and_layout(source, lazy=True)
    assert external and all(lazy.is_lazy(t) for t in loaded.graph.initializer)
    assert loaded.ByteSize() < 2_000 < model.ByteSize() // 100
    feeds = {"x": rng.standard_normal((2, 256), dtype=np.float32)}
    expected = create_session(model).run(feeds)["y"]
    np.testing.assert_array_equal(create_session(loaded).run(feeds)["y"], expected)  # through a saved copy
    result = fix(source, tmp_path / "out" / "fixed.onnx")
    assert result.exit_code == 0 and result.pipeline.verified, (result.pipeline.unverified_reason, result.pipeline.notes)
    applied = {r.name: r.changed for r in result.pipeline.records if r.status == "applied"}
    assert applied.get("fold-constants") and applied.get("dedupe-initializers") == 1, result.pipeline.notes
    written = onnx.load(str(tmp_path / "out" / "fixed.onnx"), load_external_data=False)
    assert {e.value for t in written.graph.initializer for e in t.external_data if e.key == "location"} == {
        "fixed.onnx.data"}
    assert [n.op_type for n in written.graph.node] == ["MatMul", "MatMul", "MatMul"]
    fixed = fileio.load_model(tmp_path / "out" / "fixed.onnx")
    assert tensor_hashes(fixed)["w1"] == tensor_hashes(model)["w1"]
    np.testing.assert_allclose(create_session(fixed).run(feeds)["y"], expected, rtol=1e-5, atol=1e-6)
    assert {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in source.parent.iterdir()} == files


def test_fix_refuses_an_output_whose_data_file_is_the_inputs(tmp_path) -> None:
    """Even with --force: the output's data file would replace the one the input's weights are read from."""
    from onnxmend.core.errors import OnnxmendError
    from onnxmend.flows.fix import fix

    source = fileio.save_model(build(SIZE, WIDTH), tmp_path / "m.onnx", external_threshold=0)
    source.rename(tmp_path / "a.onnx")  # a.onnx keeps naming m.onnx.data
    before = (tmp_path / "m.onnx.data").read_bytes()
    with pytest.raises(OnnxmendError, match=r"m\.onnx\.data is the input's external data"):
        fix(tmp_path / "a.onnx", tmp_path / "m.onnx", verify=False, force=True)
    assert (tmp_path / "m.onnx.data").read_bytes() == before and not (tmp_path / "m.onnx").exists()


def test_a_heavy_models_short_data_file_is_one_sentence(tmp_path, monkeypatch) -> None:
    """Weights left in the data file are checked against it when the model is loaded: a truncated file is
    refused there, with the tensor named, not when a pass or the writer reaches it."""
    from onnxmend.core import large
    from onnxmend.core.errors import OnnxmendError
    from onnxmend.flows.fix import fix

    monkeypatch.setattr(large, "HEAVY_MODEL_BYTES", 100_000)
    monkeypatch.setattr(fileio, "LAZY_MIN_BYTES", 1000)
    source = fileio.save_model(build(SIZE, WIDTH), tmp_path / "in" / "m.onnx", external_threshold=0)
    data = tmp_path / "in" / "m.onnx.data"
    data.write_bytes(data.read_bytes()[:-1000])
    with pytest.raises(OnnxmendError, match=r"external data cannot be read .*tensor 'w45' needs 65536 bytes"):
        fix(source, tmp_path / "out" / "m.onnx", verify=False)
    assert not (tmp_path / "out" / "m.onnx").exists()


def test_a_heavy_weight_that_only_a_branch_reads_travels_with_the_branch(tmp_path, monkeypatch) -> None:
    """graphsurgeon exports an outer weight that only an If branch reads into that branch: the checker's
    skeleton, shape inference's write-back, the gate's file and the output all carry it (it used to reach
    onnxruntime as a reference to the input's file, and every pass of the round was rejected)."""
    from onnx import TensorProto, helper, numpy_helper

    from onnxmend.core import large
    from onnxmend.flows.fix import fix
    from onnxmend.runtime.session import create_session

    monkeypatch.setattr(large, "HEAVY_MODEL_BYTES", 100_000)
    monkeypatch.setattr(fileio, "LAZY_MIN_BYTES", 1000)
    rng = np.random.default_rng(0)
    w = [rng.standard_normal((128, 128), dtype=np.float32) / 11 for _ in range(3)]
    out = helper.make_tensor_value_info
    then = helper.make_graph([helper.make_node("MatMul", ["h", "w2"], ["t"])], "then", [], [out("t", TensorProto.FLOAT, [1, 128])])
    other = helper.make_graph([helper.make_node("Identity", ["h"], ["e"])], "else", [], [out("e", TensorProto.FLOAT, [1, 128])])
    nodes = [helper.make_node("Transpose", ["w1"], ["w1t"]), helper.make_node("MatMul", ["x", "w1t"], ["a"]),
             helper.make_node("MatMul", ["a", "w0"], ["h"]), helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
             helper.make_node("Greater", ["s", "zero"], ["c"]),
             helper.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other)]
    graph = helper.make_graph(nodes, "branch", [out("x", TensorProto.FLOAT, [1, 128])], [out("y", TensorProto.FLOAT, [1, 128])],
                              [numpy_helper.from_array(a, f"w{i}") for i, a in enumerate(w)]
                              + [numpy_helper.from_array(np.float32(0), "zero")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    source = fileio.save_model(model, tmp_path / "in" / "model.onnx", external_threshold=0)
    result = fix(source, tmp_path / "out" / "fixed.onnx")
    assert result.exit_code == 0 and not result.pipeline.rejected, result.pipeline.notes
    assert {r.name for r in result.pipeline.records if r.status == "applied"} >= {"fold-constants"}
    fixed = fileio.load_model(tmp_path / "out" / "fixed.onnx")
    for sign in (1.0, -1.0):  # both branches
        feeds = {"x": sign * np.abs(rng.standard_normal((1, 128), dtype=np.float32))}
        np.testing.assert_allclose(create_session(fixed).run(feeds)["y"], create_session(model).run(feeds)["y"],
                                   rtol=1e-5, atol=1e-6)
