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
