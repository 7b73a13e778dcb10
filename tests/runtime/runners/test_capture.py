"""Capture through the runners: torch hooks by module path (copies, so an in-place ReLU cannot change a
captured BatchNorm output), Keras taps by operation name (keras.ops calls too), onnxruntime exposure that
leaves the model untouched."""

from __future__ import annotations

import numpy as np
import pytest

from onnxmend.core.specs import TensorSpec
from onnxmend.exporters.base import SourceModel
from onnxmend.runtime.runners.ort_runner import OnnxRunner
from tests.builders import conv_relu_model, seeded_feeds


def test_onnx_capture_exposes_tensors_and_leaves_the_model_as_it_was() -> None:
    model = conv_relu_model()
    outputs = [o.name for o in model.graph.output]
    runner = OnnxRunner(model)
    feeds = seeded_feeds(model)
    captured = runner.capture(feeds, ["c", "a"])
    assert set(captured) == {"c", "a"} and captured["c"].shape == (1, 4, 8, 8)
    assert [o.name for o in runner.model.graph.output] == outputs
    np.testing.assert_array_equal(runner.run(feeds)["y"], np.maximum(captured["a"], 0))


def test_a_runner_that_only_captures_never_builds_the_plain_session() -> None:
    """validate --layers captures only: a plain session beside the widened one held the weights twice
    (ConvNeXtTiny: ~230 MiB of its peak)."""
    model = conv_relu_model()
    runner = OnnxRunner(model)
    runner.capture(seeded_feeds(model), ["c"])
    assert runner._session is None
    runner.run(seeded_feeds(model))
    assert runner._session is not None


def test_a_graph_onnxruntime_refuses_fails_the_isolated_load_not_a_later_run() -> None:
    from onnxmend.runtime.runners import isolated_child

    model = conv_relu_model()
    model.graph.node[0].op_type = "NoSuchOp"
    with pytest.raises(Exception, match="NoSuchOp"):
        isolated_child.load("refused", model.SerializeToString(), {})
    assert "refused" not in isolated_child._SESSIONS


def test_torch_capture_keys_by_module_path_and_copies() -> None:
    torch = pytest.importorskip("torch")
    from onnxmend.runtime.runners.torch_runner import TorchRunner

    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(inplace=True)).eval()
    source = SourceModel("torch-module", "torch", net, (TensorSpec("x", (1, 3, 4, 4)),), ("output",))
    x = np.random.default_rng(0).standard_normal((1, 3, 4, 4)).astype(np.float32)
    captured = TorchRunner(source).capture({"x": x}, ["1", "2"])
    assert (captured["1"] < 0).any()  # the BatchNorm's output, before the in-place ReLU clipped it
    np.testing.assert_array_equal(captured["2"], np.maximum(captured["1"], 0))


def test_keras_capture_taps_layers_and_keras_ops_calls() -> None:
    keras = pytest.importorskip("keras")
    from onnxmend.runtime.runners.keras_runner import KerasRunner

    x = keras.Input((4, 4, 3), name="x")
    conv = keras.layers.Conv2D(3, 1, name="conv")(x)
    y = keras.layers.ReLU(name="relu")(conv + x)
    model = keras.Model(x, y)
    add = next(op.name for op in model.operations if "add" in op.name)
    source = SourceModel("keras-model", "keras", model, (TensorSpec("x", (1, 4, 4, 3), layout="NHWC"),), ("relu",))
    feeds = {"x": np.random.default_rng(0).standard_normal((1, 4, 4, 3)).astype(np.float32)}
    captured = KerasRunner(source).capture(feeds, ["conv", add])
    np.testing.assert_allclose(captured[add], captured["conv"] + feeds["x"], rtol=1e-6)
