"""``bench.png``: one panel per (provider, batch) cell and one bar per subject; the bar is the p50 latency,
the whisker runs from p10 to p90, and the label over it gives the p50 and the speed-up against the baseline.

When the bars of a panel span more than :data:`LOG_SPREAD` (a Keras source at 4.5 ms beside ONNX graphs at
0.26 ms), the panel's axis is logarithmic so every bar stays readable. The title names the model, the CPU
with the flags int8 speed depends on, and the threads; each panel names its provider.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from onnxmend.core.fileio import atomic_path
from onnxmend.runtime.bench.results import ArtifactResult, BenchResult

LOG_SPREAD = 5.0  # largest / smallest p50 in a panel past which its axis is logarithmic


def write_chart(result: BenchResult, target: Path) -> Path:
    """The chart of ``result``'s measured rows, written atomically to ``target``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [row for row in result.results if row.stats is not None]
    cells = list(dict.fromkeys((row.provider, row.batch) for row in rows))
    labels = list(dict.fromkeys(row.label for row in rows))
    colors = {label: plt.get_cmap("tab10")(i % 10) for i, label in enumerate(labels)}
    fig, axes = plt.subplots(1, len(cells), squeeze=False, dpi=120,
                             figsize=(max(7.5, (1.1 * len(labels) + 1.5) * len(cells)), 5.4))
    for ax, (provider, batch) in zip(axes[0], cells):
        cell_rows = [row for row in rows if (row.provider, row.batch) == (provider, batch)]
        scale = _panel(ax, cell_rows, colors, result.baseline)
        ax.set_title(f"{provider.upper()}, batch {batch}" + (" (log scale)" if scale == "log" else ""), fontsize=10)
    axes[0][0].set_ylabel("latency per run, ms\n(bar p50, whiskers p10–p90)")
    fig.suptitle(chart_title(result), fontsize=9)
    fig.tight_layout()
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return target


# The flags int8 and fp32 speed depend on, as the title states them.
TITLE_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_int8", "amx_bf16", "neon", "asimddp")


def chart_title(result: BenchResult) -> str:
    machine, settings = result.machine, result.settings
    present = set(machine.get("cpu_flags", []) or [])  # type: ignore[arg-type]
    flags = ", ".join(f for f in TITLE_FLAGS if f in present) or "no AVX2/AVX-512/VNNI"
    threads = settings.get("threads") or "default"
    return (f"onnxmend bench: {model_name(result)}\n"
            f"{machine.get('cpu_model', 'unknown CPU')} ({flags}), {machine.get('usable_cores', '?')} cores, "
            f"{threads} threads\nlower is better; ×N = speed-up vs {result.baseline}")


def model_name(result: BenchResult) -> str:
    """What was benchmarked: the source, else the folder or file the ONNX subjects share."""
    source = next((row.path for row in result.results if row.kind == "source" and row.path), None)
    if source:
        return str(source)
    paths = [Path(row.path) for row in result.results if row.path]
    folders = {p.parent.name for p in paths}
    if len(folders) == 1 and folders != {""}:
        return folders.pop()
    return ", ".join(dict.fromkeys(p.stem for p in paths)) or "(nothing)"


def _panel(ax: object, rows: Sequence[ArtifactResult], colors: dict[str, object], baseline: str) -> str:
    stats = [row.stats for row in rows if row.stats is not None]
    xs = range(len(stats))
    p50 = [s.p50_ms for s in stats]
    whiskers = [[s.p50_ms - s.p10_ms for s in stats], [s.p90_ms - s.p50_ms for s in stats]]
    log = bool(p50) and min(p50) > 0 and max(p50) / min(p50) > LOG_SPREAD
    if log:
        ax.set_yscale("log")
    ax.bar(xs, p50, 0.7, yerr=whiskers, capsize=4, color=[colors[row.label] for row in rows],
           error_kw={"elinewidth": 1.2, "ecolor": "black"})
    for x, row in zip(xs, rows):
        s = row.stats
        assert s is not None
        speed = "" if row.speedup is None or row.label == baseline else f"\n×{row.speedup.median:.3g}"
        ax.text(x, s.p90_ms * (1.08 if log else 1.0) + (0 if log else max(p50) * 0.02), _fmt_ms(s.p50_ms) + speed,
                ha="center", va="bottom", fontsize=8)
    names = [f"{row.label}\n(baseline)" if row.label == baseline else row.label for row in rows]
    ax.set_xticks(list(xs), names, fontsize=8, rotation=20 if len(rows) > 3 else 0)
    top = max(s.p90_ms for s in stats) if stats else 1.0
    if log:
        ax.set_ylim(min(s.p10_ms for s in stats) / 2, top * 4)
    else:
        ax.set_ylim(0, top * 1.25 if top > 0 else 1.0)
    ax.grid(axis="y", alpha=0.3, which="both" if log else "major")
    return "log" if log else "linear"


def _fmt_ms(value: float) -> str:
    if value >= 100:
        return f"{value:.0f} ms"
    return (f"{value:.1f}" if value >= 10 else f"{value:.2f}" if value >= 0.1 else f"{value:.3f}") + " ms"
