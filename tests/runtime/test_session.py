"""Session creation: CUDA when it works, CPU otherwise, and the reason said out loud."""

from __future__ import annotations

import numpy as np
import pytest

from onnxmend.core.errors import OnnxmendError
from onnxmend.runtime import session as session_mod
from onnxmend.runtime.session import create_session, cuda_available
from tests.builders import conv_relu_model

needs_gpu = pytest.mark.skipif(not cuda_available(), reason="no working CUDA execution provider on this machine")


def test_cpu_session_runs_and_reports_provider():
    s = create_session(conv_relu_model(), provider="cpu", threads=1, opt_level="disable")
    assert s.provider == "CPUExecutionProvider" and s.threads == 1
    out = s.run({"x": np.zeros((1, 3, 8, 8), np.float32)})
    assert out["y"].shape == (1, 4, 8, 8)


def test_missing_feed_is_a_clear_error():
    s = create_session(conv_relu_model(), provider="cpu")
    with pytest.raises(OnnxmendError, match="No value given for model input"):
        s.run({})


def test_auto_falls_back_to_cpu_with_a_reason_when_cuda_cannot_start(monkeypatch):
    monkeypatch.setattr(session_mod, "cuda_unavailable_reason", lambda: "no GPU in this test")
    s = create_session(conv_relu_model(), provider="auto")
    assert s.provider == "CPUExecutionProvider"
    assert s.fallback_reason == "no GPU in this test"
    with pytest.raises(OnnxmendError, match="CUDA was requested, but no GPU in this test"):
        create_session(conv_relu_model(), provider="cuda")


def test_unloadable_model_is_a_sentence():
    with pytest.raises(OnnxmendError, match="onnxruntime cannot load the model"):
        create_session(b"\x08\x01garbage", provider="cpu")


@pytest.mark.gpu
@needs_gpu
def test_cuda_session_matches_cpu_with_tf32_off():
    model = conv_relu_model()
    feeds = {"x": np.random.default_rng(0).standard_normal((1, 3, 8, 8)).astype(np.float32)}
    gpu = create_session(model, provider="cuda", tf32=False)
    assert gpu.provider == "CUDAExecutionProvider"
    np.testing.assert_allclose(gpu.run(feeds)["y"], create_session(model, provider="cpu").run(feeds)["y"], atol=1e-5)
