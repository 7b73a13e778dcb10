"""bench.png: a log axis when bars span more than LOG_SPREAD, speed-ups over the bars, and a title naming the
model, the CPU with its SIMD flags and the threads."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from onnxmend.runtime.bench.chart import _panel, chart_title, model_name, write_chart  # noqa: E402
from onnxmend.runtime.bench.results import ArtifactResult, BenchResult, Ratio, summarize  # noqa: E402


def _row(label: str, ms: float, kind: str = "onnx", path: str | None = None, speedup: float | None = None) -> ArtifactResult:
    stats = summarize([int(ms * 1e6 * f) for f in (0.95, 1.0, 1.05)], batch=1)
    ratio = Ratio("raw", speedup, speedup, speedup, 3) if speedup is not None else None
    return ArtifactResult(label, kind, path or f"out/cnx/{label}.onnx", "cpu", 1, stats=stats, speedup=ratio)


def _result(rows: list[ArtifactResult]) -> BenchResult:
    machine = {"cpu_model": "AMD EPYC 9R14", "cpu_flags": ["sse4_2", "avx2", "avx512f", "avx512_vnni"],
               "usable_cores": 2}
    return BenchResult(machine, {"threads": 2}, "raw", rows)


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_a_source_far_slower_than_the_graphs_gets_a_log_axis_and_speedups_on_the_bars() -> None:
    rows = [_row("raw", 0.26), _row("model", 0.2, speedup=1.3), _row("source", 4.5, "source", "keras:MobileNetV2", 0.058)]
    fig, ax = plt.subplots()
    assert _panel(ax, rows, {r.label: "C0" for r in rows}, "raw") == "log"
    assert ax.get_yscale() == "log"
    assert _texts(ax) == ["0.26 ms", "0.20 ms\n×1.3", "4.50 ms\n×0.058"]
    plt.close(fig)


def test_bars_of_one_order_of_magnitude_stay_on_a_linear_axis() -> None:
    rows = [_row("raw", 10.0), _row("model", 4.0, speedup=2.5)]
    fig, ax = plt.subplots()
    assert _panel(ax, rows, {r.label: "C0" for r in rows}, "raw") == "linear"
    plt.close(fig)


def test_the_title_names_the_model_the_cpu_flags_and_threads() -> None:
    title = chart_title(_result([_row("raw", 1.0), _row("source", 3.0, "source", "keras:ConvNeXtTiny")]))
    assert title.splitlines() == ["onnxmend bench: keras:ConvNeXtTiny",
                                  "AMD EPYC 9R14 (avx2, avx512f, avx512_vnni), 2 cores, 2 threads",
                                  "lower is better; ×N = speed-up vs raw"]
    assert model_name(_result([_row("raw", 1.0), _row("model", 1.0)])) == "cnx"


def test_the_chart_is_a_png(tmp_path: Path) -> None:
    path = write_chart(_result([_row("raw", 0.26), _row("model", 0.2, speedup=1.3)]), tmp_path / "bench.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
