"""The TFLite source: .tflite files made at test time from Keras models (float and full-int8), converted
in the TFLite worker, validated against the interpreter; a .tflite with an op tf2onnx cannot convert is one
sentence and exit code 2.

Nothing here imports TensorFlow into the test process: the fixtures are built in a worker of their own.
The keras:MobileNetV2 pair is ``slow`` (building, calibrating and converting it takes about a minute).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from onnxmend.core.deps import available
from onnxmend.core.worker import Worker

pytestmark = pytest.mark.skipif(
    not (available("tensorflow") and available("tf2onnx")),
    reason="needs onnxmend's `tflite` extra (tensorflow, tf2onnx, ai-edge-litert)",
)

from onnxmend.exporters import export, source_kind  # noqa: E402
from onnxmend.exporters.options import ExportOptions  # noqa: E402
from onnxmend.flows.convert import ConvertOptions, convert  # noqa: E402
from onnxmend.runtime.inputs import synthesize  # noqa: E402
from onnxmend.runtime.runners import source_runner  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def make_bucketize(path: str) -> None:
    """(In a worker) a .tflite whose BUCKETIZE op tf2onnx leaves unconverted."""
    import tensorflow as tf

    fn = tf.function(lambda x: tf.cast(tf.raw_ops.Bucketize(input=x, boundaries=[0.0, 1.0]), tf.float32),
                     input_signature=[tf.TensorSpec((2, 4), tf.float32)])
    converter = tf.lite.TFLiteConverter.from_concrete_functions([fn.get_concrete_function()], fn)
    Path(path).write_bytes(converter.convert())


def make_float_io_int8(path: str) -> None:
    """(In a worker) depthwise-keras as int8 kernels behind float inputs and outputs."""
    from onnxmend.exporters.tflite.build import keras_to_tflite
    from onnxmend.models import build

    Path(path).write_bytes(keras_to_tflite(build("depthwise-keras"), int8=True, int8_io=False))


@pytest.fixture(scope="module")
def builder():
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path]), "TF_CPP_MIN_LOG_LEVEL": "2"}
    with Worker(env=env) as worker:
        yield worker


@pytest.fixture(scope="module")
def mobilenet(builder: Worker, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tflite")
    paths = {}
    for kind, int8 in (("float", False), ("int8", True)):
        paths[kind] = builder.call("onnxmend.exporters.tflite.build:save_tflite", actor="TensorFlow",
                                   doing="building MobileNetV2", timeout_s=900, source="keras:MobileNetV2",
                                   path=str(folder / f"mnv2_{kind}.tflite"), int8=int8)
    return paths


def test_a_tflite_file_is_a_tflite_source(tmp_path: Path) -> None:
    path = tmp_path / "m.tflite"
    path.write_bytes(b"")
    assert source_kind(str(path)) == "tflite"


@pytest.mark.slow
def test_mobilenetv2_float_passes_parity_against_the_interpreter_after_fix(mobilenet, tmp_path: Path) -> None:
    result = convert(str(mobilenet["float"]), tmp_path / "out")
    assert result.validation.verdict == "pass", result.validation.comparison.failures
    assert result.validation.comparison.worst_max_abs_scaled <= 1e-4  # measured 2.5e-6
    assert result.export.framework == "tflite" and "tf2onnx" in result.export.exporter
    assert result.after.ops.get("Transpose", 0) == 0  # io-layout took the NHWC input's Transpose out


@pytest.mark.slow
def test_mobilenetv2_int8_is_within_one_quantization_step_after_fix(mobilenet, tmp_path: Path) -> None:
    result = convert(str(mobilenet["int8"]), tmp_path / "out")
    (output,) = result.validation.comparison.outputs
    assert result.export.output_steps == {output.name: 1.0}
    assert result.validation.verdict == "pass", result.validation.comparison.failures
    assert output.max_abs <= 1.0 and output.extra["steps"] <= 1.0  # int8 units: steps
    assert output.cosine > 0.999
    assert result.export.model.graph.input[0].type.tensor_type.elem_type == 3  # int8 in


def test_int8_zoo_entry_validates_in_steps_and_float_twin_exactly(tmp_path: Path) -> None:
    for name, steps in (("depthwise-tflite", {}), ("depthwise-int8-tflite", {"output_0": 1.0})):
        result = convert(f"zoo:{name}", tmp_path / name, ConvertOptions())
        assert result.validation.verdict == "pass", (name, result.validation.comparison.failures)
        assert result.export.output_steps == steps
    assert result.validation.comparison.outputs[0].max_abs <= 1.0


def test_a_float_output_dequantized_from_int8_gets_one_step_of_its_scale(builder: Worker, tmp_path: Path) -> None:
    path = tmp_path / "float_io_int8.tflite"
    builder.call(f"{__name__}:make_float_io_int8", actor="TensorFlow", doing="building", timeout_s=300, path=str(path))
    result = convert(str(path), tmp_path / "out")
    (step,) = result.export.output_steps.values()
    assert 1e-4 < step < 1.0  # the scale of the int8 tensor DEQUANTIZE reads
    assert result.export.inputs[0].dtype == "float32"
    assert result.validation.verdict == "pass", result.validation.comparison.failures
    assert result.validation.comparison.outputs[0].extra["steps"] <= 1.0


def test_source_runner_is_the_interpreter_in_its_worker_and_captures_op_outputs() -> None:
    exported = export("zoo:depthwise-tflite", ExportOptions())
    runner = source_runner(exported)
    assert runner.framework == "tflite" and "interpreter" in runner.label
    feeds = synthesize(exported.inputs, seed=0)
    assert runner.run(feeds)["output_0"].shape == (1, 16, 16, 16)
    captured = runner.capture(feeds)  # the converter fused depthwise+ReLU: two ops
    shapes = sorted(v.shape for v in captured.values())
    assert shapes == [(1, 16, 16, 8), (1, 16, 16, 16)]
    assert any("depthwise" in name for name in captured)
    batch2 = {n: np.concatenate([x, x]) for n, x in feeds.items()}  # the interpreter is resized for it
    out = runner.run(batch2)["output_0"]
    assert out.shape == (2, 16, 16, 16) and np.array_equal(out[0], out[1])
    call = runner.timed_call(feeds)
    assert call() is None


def test_an_op_tf2onnx_cannot_convert_exits_2_naming_it(builder: Worker, tmp_path: Path) -> None:
    path = tmp_path / "bucketize.tflite"
    builder.call(f"{__name__}:make_bucketize", actor="TensorFlow", doing="building a Bucketize model", timeout_s=300,
                 path=str(path))
    done = subprocess.run([sys.executable, "-m", "onnxmend", "convert", str(path), "-o", str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "TFL_BUCKETIZE x1" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "out" / "raw.onnx").exists()


def test_a_file_that_is_not_tflite_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "junk.tflite"
    path.write_bytes(b"not a flatbuffer")
    done = subprocess.run([sys.executable, "-m", "onnxmend", "convert", str(path), "-o", str(tmp_path / "out")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "is not a TFLite model" in done.stderr, done.stderr
