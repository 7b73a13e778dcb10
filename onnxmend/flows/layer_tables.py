"""The per-layer table people read in the terminal (the same numbers as ``report.md``)."""

from __future__ import annotations

from onnxmend.core.table import Cell, Table, table
from onnxmend.runtime.layers.report import LayerReport, detail_lines

VERDICT_TONE = {"pass": "good", "mismatch": "bad", "degenerate": "warn", "missing": "dim"}
MAX_ROWS = 40  # beyond this, the rows around the first failure and the last ones


def layer_table(report: LayerReport, title: str, max_rows: int = MAX_ROWS) -> Table:
    t = table(title, ["#>", "layer", "max abs>", "max rel>", "cosine>", "share>", "verdict"], empty="(no points)")
    results, shares = report.results, report.shares()
    for i in _shown(report, max_rows):
        if i is None:
            t.add("…", Cell("(rows left out here; every row is in report.md)", "dim"), "", "", "", "", "")
            continue
        r, share = results[i], shares[i]
        first = r is report.first_failure
        t.add(i, Cell(r.probe.label, "bad" if first else ""), f"{r.max_abs:.3g}", f"{r.max_rel:.3g}",
              f"{r.cosine:.6f}", "" if share is None else f"{share:.1%}",
              Cell(r.verdict + (" ← first" if first else ""), VERDICT_TONE.get(r.verdict, "")))  # type: ignore[arg-type]
    return t


def summary_lines(report: LayerReport) -> list[str]:
    """Coverage and cost, the map's notes, what was not mapped, and the explained points (the headline is
    the caller's to print, as the verdict line)."""
    m = report.layer_map
    what = "weighted ops aligned, both sides" if report.mode == "diff" else "layers with weights mapped"
    lines = [f"coverage: {m.mapped_weighted}/{m.weighted} {what} ({m.coverage:.0%}); "
             f"cost: {report.run.runs} run(s) of each side ({report.run.strategy}), "
             f"peak {report.run.peak_bytes / 2**20:.1f} MiB captured"]
    lines += m.notes
    if m.unmapped:
        lines.append(f"not mapped ({len(m.unmapped)}): " + ", ".join(m.unmapped[:10]) + (" …" if len(m.unmapped) > 10 else ""))
    details = [report.cause] if report.cause is not None else []
    if report.detail is not None and (report.cause is None or report.detail.label != report.cause.label):
        details.append(report.detail)
    for detail in details:
        lines += [line.lstrip("- ").replace("**", "").replace("`", "") for line in detail_lines(detail) if line]
    return lines


def _shown(report: LayerReport, max_rows: int) -> list[int | None]:
    n = len(report.results)
    if n <= max_rows:
        return list(range(n))
    first = report.first_failure
    k = report.results.index(first) if first is not None else 0
    around = set(range(max(0, k - 5), min(n, k + max_rows - 10))) | set(range(n - 5, n))
    shown: list[int | None] = []
    for i in range(n):
        if i in around:
            shown.append(i)
        elif shown and shown[-1] is not None:
            shown.append(None)
    return shown
