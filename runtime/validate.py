"""Validation: run the source framework and onnxruntime on the same seeded inputs and compare.

The ONNX model may have had its interface changed by passes (an NHWC input turned NCHW); the metadata
says how, so inputs are synthesised in the source's layout and adapted, and outputs are restored to the
source's layout before comparison.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import onnx

from onnxmend.core.errors import OnnxmendError
from onnxmend.exporters.base import Export
from onnxmend.runtime.compare import DEFAULT_ATOL, DEFAULT_RTOL, Comparison, compare_outputs
from onnxmend.runtime.inputs import synthesize
from onnxmend.core.interface import adapt_feeds, restore_outputs
from onnxmend.runtime.session import Provider, create_session


@dataclass
class Validation:
    comparison: Comparison
    provider: str
    provider_note: str | None
    seed: int
    batch: int
    source_seconds: float
    onnx_seconds: float

    @property
    def verdict(self) -> str:
        return self.comparison.verdict

    def to_json(self) -> dict[str, object]:
        return {
            **self.comparison.to_json(), "provider": self.provider, "provider_note": self.provider_note,
            "seed": self.seed, "batch": self.batch,
            "source_seconds": round(self.source_seconds, 4), "onnx_seconds": round(self.onnx_seconds, 4),
        }


def validate(
    model: onnx.ModelProto, export: Export, *, seed: int = 0, batch: int = 1,
    atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL, provider: Provider = "auto", threads: int = 0,
) -> Validation:
    """Compare ``model`` on onnxruntime with ``export``'s source runner on seeded inputs."""
    if export.source_runner is None:
        raise OnnxmendError(f"{export.source} has no source runner to validate against.")
    feeds = synthesize(export.inputs, seed=seed, batch=batch)
    start = time.perf_counter()
    reference = export.source_runner(feeds)
    source_seconds = time.perf_counter() - start
    session = create_session(model, provider=provider, threads=threads, tf32=False)
    start = time.perf_counter()
    actual = restore_outputs(session.run(adapt_feeds(feeds, model)), model)
    onnx_seconds = time.perf_counter() - start
    comparison = compare_outputs(_as_float(reference), actual, atol, rtol)
    return Validation(comparison, session.provider, session.fallback_reason, seed, batch, source_seconds, onnx_seconds)


def _as_float(outputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in outputs.items()}
