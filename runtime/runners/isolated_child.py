"""The worker side of :mod:`onnxmend.runtime.runners.isolated`: sessions kept by key, run on request.

A session is built from the bytes as they arrive (or from the file with external data): no parsed copy of
the model is kept beside it, so a big model's weights are held once, by onnxruntime."""

from __future__ import annotations

from typing import Any

import numpy as np

from onnxmend.runtime.session import Session, create_session

# A few sessions at a time: the gate alternates between the input graph and the current candidate.
_SESSIONS: dict[str, Session] = {}
_KEEP = 4


def load(key: str, model: bytes | None, options: dict[str, Any], path: str | None = None) -> tuple[str, str | None]:
    """Create (or keep) the session for ``key`` from the model's bytes, or from ``path`` (a model with
    external data); returns the provider it runs on and why, if it fell back. A graph onnxruntime refuses
    fails here, not at a later run."""
    if key not in _SESSIONS:
        while len(_SESSIONS) >= _KEEP:
            _SESSIONS.pop(next(iter(_SESSIONS)))
        _SESSIONS[key] = create_session(path if model is None else model, **options)
    session = _SESSIONS[key]
    return session.provider, session.fallback_reason


def run(key: str, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return _SESSIONS[key].run(feeds)


def unload(key: str) -> None:
    _SESSIONS.pop(key, None)
