"""The worker side of :mod:`onnxmend.runtime.runners.isolated`: sessions kept by key, run on request."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx

from onnxmend.runtime.runners.ort_runner import OnnxRunner

# A few sessions at a time: the gate alternates between the input graph and the current candidate.
_SESSIONS: dict[str, OnnxRunner] = {}
_KEEP = 4


def load(key: str, model: bytes | None, options: dict[str, Any], path: str | None = None) -> tuple[str, str | None]:
    """Create (or keep) the session for ``key`` from the model's bytes, or from ``path`` (a model with
    external data); returns the provider it runs on and why, if it fell back."""
    if key not in _SESSIONS:
        while len(_SESSIONS) >= _KEEP:
            _SESSIONS.pop(next(iter(_SESSIONS)))
        runner = OnnxRunner(path if model is None else onnx.load_from_string(model), **options)
        runner.session  # noqa: B018 - built here, so a graph onnxruntime refuses fails the load, not a run
        _SESSIONS[key] = runner
    session = _SESSIONS[key].session
    return session.provider, session.fallback_reason


def run(key: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return _SESSIONS[key].run(feeds)


def unload(key: str) -> None:
    _SESSIONS.pop(key, None)
