"""The tables people read, built once from results and drawn by two renderers: ``core.table.to_markdown``
for ``report.md`` and the CLI's rich renderer for the terminal.
"""

from __future__ import annotations

from onnxmend.core.graph import human_bytes
from onnxmend.core.table import Cell, Table, table
from onnxmend.passes.infra.records import PipelineReport
from onnxmend.runtime.compare import Comparison

# Op types whose counts matter most to the user: shown first in before/after tables.
HEADLINE_OPS = ("Transpose", "Pad", "Shape", "ReduceMean", "Sqrt", "Reciprocal", "LayerNormalization",
                "BatchNormalization", "Conv", "MatMul")
VERDICT_TONE = {"pass": "good", "mismatch": "bad", "degenerate": "warn", "unverified": "warn"}


def parity_table(comparison: Comparison, title: str) -> Table:
    t = table(title, ["output", "shape>", "max abs>", "max abs/scale>", "cosine>", "needed atol>", "verdict"])
    for o in comparison.outputs:
        verdict = o.verdict + (f" {o.reason}" if o.reason else "")
        t.add(o.name, "x".join(map(str, o.shape)), f"{o.max_abs:.3g}", f"{o.max_abs_scaled:.3g}",
              f"{o.cosine:.7f}", f"{o.needed_atol:.3g}", Cell(verdict, VERDICT_TONE[o.verdict]))  # type: ignore[arg-type]
    return t


def passes_table(report: PipelineReport, verbose: bool = False) -> Table:
    """What each pass did: applied or rejected (with the reason), never run (with the precondition), and
    with ``verbose`` every candidate it skipped and why."""
    t = table(f"passes ({report.rounds} round(s), {'gated' if report.verified else 'not gated'})",
              ["pass", "round>", "status", "changed>", "op deltas / reason"], empty="(none changed the graph)")
    if report.unverified_reason:
        t.add(Cell("(numeric gate)", "bold"), "", Cell("not verified", "warn"), "", report.unverified_reason)
    for r in report.records:
        status = Cell("applied", "good") if r.status == "applied" else Cell("rejected", "bad")
        t.add(r.name, r.round, status, r.changed, r.reason if r.status == "rejected" else (r.delta_text() or "-"))
    for name, reason in report.not_run.items():
        if verbose:
            t.add(name, "", Cell("not run", "dim"), "", reason)
    if verbose:
        for name, skips in report.skipped.items():
            for s in skips:
                t.add(name, "", Cell("skipped", "dim"), "", f"{s.node}: {s.reason}")
    return t


def ops_table(before: dict[str, int], after: dict[str, int], headline: tuple[str, ...] = HEADLINE_OPS) -> Table:
    t = table("ops", ["op", "raw>", "fixed>"])
    ops = [op for op in headline if before.get(op) or after.get(op)]
    ops += sorted(op for op in set(before) | set(after) if op not in ops and before.get(op, 0) != after.get(op, 0))
    for op in ops:
        t.add(op, before.get(op, 0), after.get(op, 0))
    t.add(Cell("nodes", "bold"), sum(before.values()), sum(after.values()))
    return t


def weights_line(report: PipelineReport) -> str:
    """``weights 40.5 KB → 50.1 KB (1.24×; a rewrite may grow them 1.5× at most)``."""
    limit = "no limit (--max-growth inf)" if report.max_growth == float("inf") else \
        f"a rewrite may grow them {report.max_growth:g}× at most (--max-growth)"
    refused = [r.name for r in report.rejected if "--max-growth" in r.reason]
    tail = f"; refused for growth: {', '.join(refused)}" if refused else ""
    return (f"weights {human_bytes(report.weights_before)} → {human_bytes(report.weights_after)} "
            f"({report.growth:.2f}×; {limit}{tail})")


def skipped_summary(report: PipelineReport, limit: int = 20) -> list[str]:
    """One line per (pass, reason): how many candidates were skipped for it."""
    lines = []
    for name, skips in report.skipped.items():
        reasons: dict[str, int] = {}
        for s in skips:
            reasons[s.reason] = reasons.get(s.reason, 0) + 1
        for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1])[:limit]:
            lines.append(f"`{name}`: {count}× {reason}")
    return lines
