"""``bench.png``: one panel per (provider, batch) cell and one bar per subject; the bar is the p50 latency,
the whisker runs from p10 to p90."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from onnxmend.core.fileio import atomic_path
from onnxmend.runtime.bench.results import ArtifactResult


def write_chart(rows: Sequence[ArtifactResult], target: Path, baseline: str) -> Path:
    """One panel per (provider, batch), each on its own scale; bars are p50, whiskers p10–p90."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = list(dict.fromkeys((row.provider, row.batch) for row in rows))
    labels = list(dict.fromkeys(row.label for row in rows))
    colors = {label: plt.get_cmap("tab10")(i % 10) for i, label in enumerate(labels)}
    fig, axes = plt.subplots(1, len(cells), squeeze=False, dpi=120,
                             figsize=(max(5.0, 0.9 * len(labels) + 1.5) * len(cells), 4.6))
    for ax, (provider, batch) in zip(axes[0], cells):
        cell_rows = [row for row in rows if (row.provider, row.batch) == (provider, batch)]
        _panel(ax, cell_rows, colors, baseline)
        ax.set_title(f"{provider.upper()}, batch {batch}", fontsize=10)
    axes[0][0].set_ylabel("latency per run, ms\n(bar p50, whiskers p10–p90)")
    fig.suptitle("onnxmend bench (lower is better)", fontsize=11)
    fig.tight_layout()
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return target


def _panel(ax: object, rows: Sequence[ArtifactResult], colors: dict[str, object], baseline: str) -> None:
    stats = [row.stats for row in rows if row.stats is not None]
    xs = range(len(stats))
    p50 = [s.p50_ms for s in stats]
    whiskers = [[s.p50_ms - s.p10_ms for s in stats], [s.p90_ms - s.p50_ms for s in stats]]
    ax.bar(xs, p50, 0.7, yerr=whiskers, capsize=4, color=[colors[row.label] for row in rows],
           error_kw={"elinewidth": 1.2, "ecolor": "black"})
    top = max(s.p90_ms for s in stats) if stats else 1.0
    for x, s in zip(xs, stats):
        ax.text(x, s.p90_ms + top * 0.02, _fmt_ms(s.p50_ms), ha="center", va="bottom", fontsize=8)
    names = [f"{row.label}\n(baseline)" if row.label == baseline else row.label for row in rows]
    ax.set_xticks(list(xs), names, fontsize=8, rotation=20 if len(rows) > 3 else 0)
    ax.set_ylim(0, top * 1.15 if top > 0 else 1.0)
    ax.grid(axis="y", alpha=0.3)


def _fmt_ms(value: float) -> str:
    if value >= 100:
        return f"{value:.0f}"
    return f"{value:.1f}" if value >= 10 else f"{value:.2f}" if value >= 0.1 else f"{value:.3f}"
