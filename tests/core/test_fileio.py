"""Atomic writes, external data for large models, and loading errors."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from onnxmend.core import fileio
from onnxmend.core.errors import OnnxmendError
from tests.builders import conv_relu_model


def test_atomic_path_leaves_no_file_when_the_writer_crashes(tmp_path):
    target = tmp_path / "out.json"
    with pytest.raises(RuntimeError):
        with fileio.atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_replaces_existing_file_whole(tmp_path):
    target = tmp_path / "r.json"
    target.write_text("old")
    fileio.write_json(target, {"a": 1})
    assert target.read_text() == '{\n  "a": 1\n}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["r.json"]


def test_large_models_are_saved_with_external_data(tmp_path):
    model = conv_relu_model()
    model.graph.initializer[0].CopyFrom(onnx.numpy_helper.from_array(np.ones((64, 3, 3, 3), np.float32), "W"))
    before = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    path = fileio.save_model(model, tmp_path / "m.onnx", external_threshold=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.onnx", "m.onnx.data"]
    loaded = onnx.load(str(path), load_external_data=False)
    assert any(t.data_location == onnx.TensorProto.EXTERNAL for t in loaded.graph.initializer)
    onnx.checker.check_model(str(path))
    # the caller's model keeps its tensors in memory
    assert all(t.data_location != onnx.TensorProto.EXTERNAL for t in model.graph.initializer)
    assert all(np.array_equal(onnx.numpy_helper.to_array(t), before[t.name]) for t in model.graph.initializer)


@pytest.mark.parametrize("content, message", [(None, "does not exist"), (b"\x08\x07garbage\xff\xff", "not a")])
def test_load_model_errors_are_sentences(tmp_path, content, message):
    path = tmp_path / "x.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(OnnxmendError, match=message):
        fileio.load_model(path)


def test_load_model_rejects_a_directory(tmp_path):
    with pytest.raises(OnnxmendError, match="is a directory"):
        fileio.load_model(tmp_path)


def test_outputs_get_ordinary_file_permissions(tmp_path):
    import os
    import stat

    path = fileio.write_text(tmp_path / "a.txt", "x")
    mode = stat.S_IMODE(path.stat().st_mode)
    umask = os.umask(0)
    os.umask(umask)
    assert mode == 0o666 & ~umask


def test_json_is_strict_json_even_with_non_finite_numbers(tmp_path):
    # A NaN epsilon read from a mutated file was printed as the bare word NaN, which is not JSON.
    data = {"epsilon": float("nan"), "values": np.array([1.0, np.inf, -np.inf], np.float32), "n": np.int64(3)}
    text = fileio.json_text(data)
    assert json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in the JSON")) == {
        "epsilon": "NaN", "values": [1.0, "Infinity", "-Infinity"], "n": 3}
    fileio.write_json(tmp_path / "r.json", data)
    assert json.loads((tmp_path / "r.json").read_text())["epsilon"] == "NaN"
