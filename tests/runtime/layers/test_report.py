"""The layer report: first failure and first cause, shares of the final error, unmapped layers listed,
JSON with the cost, Markdown, and the error-vs-depth PNG."""

from __future__ import annotations

import json
import math
from pathlib import Path

from onnxmend.runtime.compare import Tolerance
from onnxmend.runtime.layers.explain import LayerDetail
from onnxmend.runtime.layers.mapping import LayerMap, LayerPoint
from onnxmend.runtime.layers.plot import write_plot
from onnxmend.runtime.layers.probe import Probe, ProbeResult, ProbeRun
from onnxmend.runtime.layers.report import LayerReport, layer_markdown

LABELS = ["conv0", "relu0", "conv1", "head"]


def report(errors: list[float], cause_at: int | None = None) -> LayerReport:
    results = [ProbeResult(Probe(label, label, f"t{i}"), "mismatch" if e > 1e-4 else "pass", e, e, 1 - e, e)
               for i, (label, e) in enumerate(zip(LABELS, errors))]
    points = [LayerPoint((label,), f"t{i}", (f"n{i}",)) for i, label in enumerate(LABELS)]
    layer_map = LayerMap(points, ["bn_unmapped"], ["dropout"], 4)
    out = LayerReport("validate", "zoo:test", "torch", layer_map, ProbeRun(results, "chunks", runs=2, peak_bytes=3 << 20),
                      Tolerance())
    if cause_at is not None:
        out.cause = LayerDetail(LABELS[cause_at], results[cause_at], differs={"epsilon": (1e-3, 1e-5)})
    return out


def test_first_failure_shares_and_exit_code() -> None:
    r = report([1e-6, 1e-6, 0.02, 0.04])
    assert r.first_failure is not None and r.first_failure.probe.label == "conv1" and r.exit_code == 1
    assert [round(s, 2) for s in r.shares()] == [0.0, 0.0, 0.5, 1.0]  # type: ignore[arg-type]
    assert r.headline() == "first diverging layer: conv1"
    assert report([1e-6] * 4).exit_code == 0


def test_a_cause_before_the_first_failure_is_named_first() -> None:
    r = report([1e-5, 1e-5, 0.02, 0.04], cause_at=0)
    assert r.first_wrong == "conv0"
    assert r.headline() == ("first diverging layer: conv0 — epsilon 0.001 vs 1e-05 "
                            "(within tolerance there; over it from conv1 on)")


def test_json_and_markdown_list_the_cost_and_what_was_not_compared(tmp_path: Path) -> None:
    r = report([1e-6, 1e-6, 0.02, 0.04])
    data = json.loads(json.dumps(r.to_json()))
    assert data["cost"] == {"strategy": "chunks", "runs": 2, "sessions": 2, "peak_captured_bytes": 3 << 20,
                            "seconds": 0.0, "capture_seconds": 0.0}
    assert data["map"]["unmapped"] == ["bn_unmapped"] and data["map"]["coverage"] == 0.75
    text = layer_markdown(r)
    assert "- bn_unmapped: has weights, no ONNX node answers for it" in text
    assert "- dropout: no ONNX nodes" in text and "| 2 | conv1 |" in text


def test_the_plot_is_a_png_even_with_exact_and_missing_points(tmp_path: Path) -> None:
    r = report([0.0, 1e-6, 0.02, math.inf])
    target = write_plot(r, tmp_path / "layers.png")
    assert target.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and target.stat().st_size > 5000
