"""The Paddle and MindSpore ports of tf-same-conv-keras compute what the Keras original computes, each run
in its own framework's worker (the Keras twin runs here); the MindSpore pad_mode="pad" port with TF's
amounts matches as well — its exporter's bug is in the ONNX file, not in the port."""

from __future__ import annotations

import numpy as np
import pytest

from onnxmend.core.deps import available
from onnxmend.exporters import export
from onnxmend.exporters.options import ExportOptions
from onnxmend.models import ZOO, build
from onnxmend.runtime.runners import source_runner

pytest.importorskip("keras")


@pytest.mark.parametrize("name, module", [
    ("tf-same-conv-paddle", "paddle"), ("tf-same-conv-mindspore", "mindspore"),
    ("tf-same-conv-mindspore-pads", "mindspore"),
])
def test_ports_match_the_keras_original(name: str, module: str) -> None:
    if not available(module):
        pytest.skip(f"needs onnxmend's `{module}` extra")
    original = ZOO[name].twin_of
    x = np.random.default_rng(1).standard_normal(ZOO[original].inputs[0].shape).astype(np.float32)
    expected = np.asarray(build(original)(x, training=False)).transpose(0, 3, 1, 2)
    runner = source_runner(export(f"zoo:{name}", ExportOptions()))
    (actual,) = runner.run({"x": np.ascontiguousarray(x.transpose(0, 3, 1, 2))}).values()
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() <= 1e-5
