"""Loaded inputs reach every comparison: a model that is wrong only for large inputs passes on synthetic
inputs and fails on loaded ones (validate, the pass gate); the int8 gate and bench run on the loaded arrays
(their saved outputs are onnxruntime's on those arrays); the input file is never modified."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import pytest

from onnxmend.core.specs import specs_from_model
from onnxmend.flows.bench import bench
from onnxmend.flows.quantize import quantize
from onnxmend.flows.validate import validate
from onnxmend.runtime.bench.options import BenchOptions
from onnxmend.runtime.data import DataOptions, read_inputs
from onnxmend.runtime.gate import NumericGate
from onnxmend.runtime.runners import onnx_runner
from tests.builders import F, make_model, node


def relu() -> onnx.ModelProto:
    return make_model([node("Relu", ["x"], "y")], {"x": ([1, 3, 4, 4], F)}, ["y"])


def clipped_at_ten() -> onnx.ModelProto:
    """Relu's outputs below 10, wrong above: seeded normal inputs never get there."""
    return make_model([node("Clip", ["x", "lo", "hi"], "y")], {"x": ([1, 3, 4, 4], F)}, ["y"],
                      {"lo": np.array(0, np.float32), "hi": np.array(10, np.float32)})


def matmul() -> onnx.ModelProto:
    w = np.random.default_rng(0).standard_normal((32, 16)).astype(np.float32)
    return make_model([node("MatMul", ["x", "w"], "y")], {"x": ([2, 32], F)}, ["y"], {"w": w})


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture
def large(tmp_path: Path) -> Path:
    path = tmp_path / "large.npz"
    x = 20 + 5 * np.random.default_rng(2).standard_normal((2, 3, 4, 4))
    np.savez(path, x=x.astype(np.float32))  # two samples of batch 1, most values above 10
    return path


def test_validate_on_loaded_inputs_finds_what_synthetic_inputs_miss(tmp_path: Path, large: Path) -> None:
    onnx.save(relu(), tmp_path / "relu.onnx")
    onnx.save(clipped_at_ten(), tmp_path / "clip.onnx")
    before = sha(large)
    assert validate(tmp_path / "clip.onnx", str(tmp_path / "relu.onnx")).verdict == "pass"
    result = validate(tmp_path / "clip.onnx", str(tmp_path / "relu.onnx"), data=DataOptions(load=large))
    assert result.verdict == "mismatch"
    assert result.inputs.summary.startswith(f"loaded from {large} (2 samples") and len(result.runs) == 2
    assert sha(large) == before


def test_the_pass_gate_rejects_on_loaded_inputs_what_synthetic_inputs_let_through(large: Path) -> None:
    loaded = read_inputs(large).fit(specs_from_model(relu()))
    assert NumericGate(relu()).check(clipped_at_ten()) == ""
    gate = NumericGate(relu(), samples=loaded.samples)
    assert gate.sizes[:2] == ["sample 0", "sample 1"]
    assert "output y changed at sample 0" in gate.check(clipped_at_ten())


def test_the_int8_gate_runs_on_the_loaded_samples(tmp_path: Path) -> None:
    onnx.save(matmul(), tmp_path / "mm.onnx")
    rng = np.random.default_rng(3)
    samples = [{"x": (rng.standard_normal((2, 32)) * 5).tolist()} for _ in range(3)]
    (tmp_path / "in.json").write_text(json.dumps(samples))
    result = quantize(tmp_path / "mm.onnx", tmp_path / "q", latency_runs=0,
                      data=DataOptions(load=tmp_path / "in.json", save=tmp_path / "out.npz"))
    assert result.manifest["inputs"]["summary"] == f"loaded from {tmp_path / 'in.json'} (3 samples)"
    assert result.contents.vs_fp32.batches == 3
    saved = np.load(tmp_path / "out.npz")
    runner = onnx_runner(matmul())
    for i, sample in enumerate(samples):
        expected = runner.run({"x": np.asarray(sample["x"], np.float32)})["y"]
        np.testing.assert_array_equal(saved[f"sample{i}/fp32/y"], expected)
        assert saved[f"sample{i}/int8/y"].shape == expected.shape


def test_bench_times_the_first_loaded_batch_and_saves_its_outputs(tmp_path: Path, large: Path) -> None:
    onnx.save(relu(), tmp_path / "relu.onnx")
    x = np.random.default_rng(1).standard_normal((1, 3, 4, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    options = BenchOptions(runs=3, rounds=1, warmup=0, memory=False)
    result = bench([tmp_path / "relu.onnx"], options=options,
                   data=DataOptions(load=tmp_path / "x.npy", save=tmp_path / "b.npz"))
    assert result.inputs["kind"] == "loaded" and result.settings["batches"] == [1]
    np.testing.assert_array_equal(np.load(tmp_path / "b.npz")["relu/y"], np.maximum(x, 0))
