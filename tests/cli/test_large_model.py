"""A model with external data through ``onnxmend fix``: written with external data in the output's folder,
every untouched tensor byte-for-byte the same, the same outputs. The model is a few MB here (a file with
external data keeps it through ``fix`` whatever its size); ``bench/large_model.py --gb 2.2`` runs the same
check past protobuf's 2 GB limit."""

from __future__ import annotations

import numpy as np
import onnx

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
