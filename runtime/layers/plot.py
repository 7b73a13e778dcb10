"""``layers.png``: error vs depth on a log scale, the tolerance as a line, the first point over it marked, and
the first point whose attributes or weights differ when that comes earlier (still within tolerance)."""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

from onnxmend.core.fileio import atomic_path
from onnxmend.runtime.layers.probe import ProbeResult
from onnxmend.runtime.layers.report import LayerReport

FLOOR = 1e-9  # exact points are drawn here, so a log axis can show them


def write_plot(report: LayerReport, target: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = report.results
    xs = list(range(len(results)))
    # the atol each point needs at the report's rtol: a point passes exactly when it is under the atol line
    errors = [max(_needed(r), FLOOR) if math.isfinite(_needed(r)) else None for r in results]
    fig, ax = plt.subplots(figsize=(max(6.0, min(16.0, 0.12 * len(xs) + 5)), 4.2), dpi=120)
    ok = [(x, e) for x, e, r in zip(xs, errors, results) if e is not None and not r.failed]
    bad = [(x, e) for x, e, r in zip(xs, errors, results) if e is not None and r.failed]
    ax.plot(xs, [e if e is not None else float("nan") for e in errors], color="0.6", lw=1, zorder=1)
    if ok:
        ax.scatter(*zip(*ok), s=14, color="tab:green", label="pass", zorder=2)
    if bad:
        ax.scatter(*zip(*bad), s=18, color="tab:red", label="exceeds tolerance", zorder=3)
    ax.axhline(report.tolerance.atol, color="tab:orange", ls="--", lw=1, label=f"atol {report.tolerance.atol:g}")
    first = report.first_failure
    if first is not None:
        k = results.index(first)
        ax.axvline(k, color="tab:red", lw=1, alpha=0.6)
        ax.annotate(f"first over tolerance: {_short(first.probe.label)}", (k, errors[k] or FLOOR), xytext=(10, -28),
                    textcoords="offset points", fontsize=8, color="tab:red",
                    arrowprops={"arrowstyle": "-", "color": "tab:red", "lw": 0.8})
    cause = report.cause
    labels = [r.probe.label for r in results]
    if cause is not None and cause.label in labels and (first is None or cause.label != first.probe.label):
        k = labels.index(cause.label)
        ax.axvline(k, color="tab:purple", lw=1, ls=":", alpha=0.8)
        what = ", ".join(d for d in cause.differs if d != "momentum") or "weights"
        ax.annotate(f"first wrong ({what} differ): {_short(cause.label)}",
                    (k, errors[k] or FLOOR), xytext=(15, 45), textcoords="offset points", fontsize=8,
                    color="tab:purple", arrowprops={"arrowstyle": "-", "color": "tab:purple", "lw": 0.8})
    ax.set_yscale("log")
    known = [e for e in errors if e is not None] + [report.tolerance.atol]
    ax.set_ylim(min(known) / 5, max(known) * 30)
    if len(xs) <= 30:
        ax.set_xticks(xs, [_short(r.probe.label, 24) for r in results], rotation=35, ha="right", fontsize=7)
    ax.set_xlabel("layer (network order)")
    ax.set_ylabel(f"atol needed (at rtol {report.tolerance.rtol:g}),\n× max(1, max|ref|)")
    command = "validate --layers" if report.mode == "validate" else "diff"
    ax.set_title("\n".join(textwrap.wrap(f"onnxmend {command}: {report.subject}", 70)), fontsize=9)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return target


def _needed(result: ProbeResult) -> float:
    if result.needed_atol == result.needed_atol:  # not NaN
        return result.needed_atol
    return result.max_abs / result.scale if result.max_abs == result.max_abs else float("nan")


def _short(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"
