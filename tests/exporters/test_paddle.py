"""The Paddle source: a Layer factory, a saved inference model (PIR .json and old .pdmodel) and the zoo
twin, exported with paddle2onnx in the Paddle worker and validated against Paddle.

Paddle is never imported into the test process (TensorFlow may be there already; the two segfault
together): the saved models are made in a worker of their own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from onnxmend.core.deps import available
from onnxmend.core.worker import Worker

pytestmark = pytest.mark.skipif(not (available("paddle") and available("paddle2onnx")),
                                reason="needs onnxmend's `paddle` extra (paddlepaddle, paddle2onnx)")

from onnxmend.exporters import export, source_kind  # noqa: E402
from onnxmend.exporters.options import ExportOptions, InputArg  # noqa: E402
from onnxmend.flows.convert import convert  # noqa: E402
from onnxmend.runtime.inputs import synthesize  # noqa: E402
from onnxmend.runtime.runners import source_runner  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
NET = textwrap.dedent('''
    import numpy as np
    import paddle

    class Net(paddle.nn.Layer):
        def __init__(self):
            super().__init__()
            self.conv = paddle.nn.Conv2D(3, 8, 3, stride=2, padding="SAME")
            self.bn = paddle.nn.BatchNorm2D(8)
            self.fc = paddle.nn.Linear(8, 10)

        def forward(self, x):
            y = paddle.nn.functional.relu(self.bn(self.conv(x)))
            return self.fc(y.mean(axis=[2, 3]))

    def make():
        net = Net()
        net.example_inputs = (np.zeros((1, 3, 17, 17), np.float32),)
        return net
''')


def save_inference_model(factory: str, prefix: str, pir: bool) -> None:
    """(In a worker) ``paddle.jit.save`` of the factory's Layer: PIR .json, or the old .pdmodel."""
    os.environ["FLAGS_enable_pir_api"] = "1" if pir else "0"
    import paddle

    from onnxmend.exporters.paddle.child import build_layer

    layer = build_layer(factory)
    paddle.jit.save(layer, prefix, input_spec=[paddle.static.InputSpec([None, 3, 17, 17], "float32", "x")])


@pytest.fixture(scope="module")
def net_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("paddle") / "net.py"
    path.write_text(NET)
    return path


def test_a_factory_file_that_imports_paddle_is_a_paddle_source(net_file: Path) -> None:
    assert source_kind(f"{net_file}:make") == "paddle"


def test_layer_factory_passes_parity_after_fix(net_file: Path, tmp_path: Path) -> None:
    result = convert(f"{net_file}:make", tmp_path / "out")
    assert result.validation.verdict == "pass", result.validation.comparison.failures
    assert result.validation.comparison.worst_max_abs_scaled <= 1e-4
    assert result.export.framework == "paddle" and result.export.exporter.startswith("paddle2onnx 2.")
    assert result.before.ops.get("Conv") == 1 and result.after.ops.get("BatchNormalization", 0) == 0
    assert any("Polygraphy" in n for n in result.export.notes)


def test_dynamic_batch_and_capture(net_file: Path) -> None:
    exported = export(f"{net_file}:make", ExportOptions(dynamic_batch=True))
    assert exported.inputs[0].shape == ("batch", 3, 17, 17)
    assert exported.model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    runner = source_runner(exported)
    feeds = {"x": np.random.default_rng(0).standard_normal((3, 3, 17, 17)).astype(np.float32)}
    assert next(iter(runner.run(feeds).values())).shape == (3, 10)
    captured = runner.capture(feeds, ["conv", "bn"])
    assert captured["conv"].shape == (3, 8, 9, 9)  # SAME at stride 2: ceil(17 / 2)


@pytest.mark.parametrize("pir", [True, False], ids=["json", "pdmodel"])
def test_saved_inference_model_passes_parity(net_file: Path, tmp_path: Path, pir: bool) -> None:
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT), *sys.path])}
    with Worker(env=env) as worker:
        worker.call(f"{__name__}:save_inference_model", actor="Paddle", doing="saving", timeout_s=300, factory=f"{net_file}:make",
                    prefix=str(tmp_path / "saved" / "inference"), pir=pir)
    suffix = ".json" if pir else ".pdmodel"
    assert (tmp_path / "saved" / f"inference{suffix}").is_file()
    for source in (tmp_path / "saved" / f"inference{suffix}", tmp_path / "saved"):  # the file or its folder
        assert source_kind(str(source)) == "paddle"
        result = convert(str(source), tmp_path / f"out-{source.name}")
        assert result.validation.verdict == "pass", result.validation.comparison.failures
        assert result.validation.comparison.worst_max_abs_scaled <= 1e-4
        assert "Paddle Inference" in source_runner(result.export).label


def test_zoo_twin_padding_same_is_resolved_and_matches() -> None:
    exported = export("zoo:tf-same-conv-paddle", ExportOptions())
    autopads = [a.s for n in exported.model.graph.node if n.op_type == "Conv" for a in n.attribute if a.name == "auto_pad"]
    assert autopads == [b"SAME_UPPER", b"SAME_UPPER"]  # Paddle's "SAME" is TF's rule


def test_no_example_inputs_is_one_sentence(tmp_path: Path) -> None:
    path = tmp_path / "bare.py"
    path.write_text("import paddle\ndef make():\n    return paddle.nn.Linear(4, 2)\n")
    done = subprocess.run([sys.executable, "-m", "onnxmend", "convert", f"{path}:make", "-o", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert done.returncode == 2 and "--input NAME:" in done.stderr and "Traceback" not in done.stderr
    exported = export(f"{path}:make", ExportOptions(inputs=(InputArg("x", (2, 4)),)))
    feeds = synthesize(exported.inputs)
    assert source_runner(exported).run(feeds)[exported.model.graph.output[0].name].shape == (2, 2)
