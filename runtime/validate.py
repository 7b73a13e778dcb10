"""Validation: run the source framework and onnxruntime on the same seeded inputs and compare.

The ONNX model may have had its interface changed by passes (an NHWC input turned NCHW); the metadata
says how, so inputs are synthesised in the source's layout and the ONNX runner adapts them
(:class:`~onnxmend.runtime.runners.interface.SourceLayout`) and restores its outputs before comparison.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import onnx

from onnxmend.exporters.base import Export
from onnxmend.runtime.compare import DEFAULT_ATOL, DEFAULT_RTOL, Comparator, Comparison, Tolerance
from onnxmend.runtime.inputs import synthesize
from onnxmend.runtime.runners import onnx_runner, source_runner
from onnxmend.runtime.session import Provider


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
    """Compare ``model`` on onnxruntime with ``export``'s source model, run in its own framework, on seeded inputs."""
    reference_runner = source_runner(export)
    feeds = synthesize(export.inputs, seed=seed, batch=batch)
    start = time.perf_counter()
    reference = reference_runner.run(feeds)
    source_seconds = time.perf_counter() - start
    candidate = onnx_runner(model, provider=provider, threads=threads, opt_level="all", tf32=False)
    start = time.perf_counter()
    actual = candidate.run(feeds)
    onnx_seconds = time.perf_counter() - start
    comparison = Comparator(Tolerance(atol, rtol), reference=f"source ({export.framework})").compare(reference, actual)
    session = candidate.runner.session
    return Validation(comparison, session.provider, session.fallback_reason, seed, batch, source_seconds, onnx_seconds)
