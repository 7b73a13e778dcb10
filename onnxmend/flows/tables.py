"""The tables people read, built once from results and drawn by two renderers: ``core.table.to_markdown``
for ``report.md`` and the CLI's rich renderer for the terminal.
"""

from __future__ import annotations

from onnxmend.core.graph import human_bytes
from onnxmend.core.table import Cell, Table, table
from onnxmend.passes.infra.records import PipelineReport
from onnxmend.runtime.bench.results import ArtifactResult, BenchResult
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


def bench_caption(result: BenchResult) -> str:
    settings = result.settings
    return (f"threads {settings['threads'] or 'default'}, ORT opt level {settings['opt_level']}, "
            f"TF32 {'on' if settings['tf32'] else 'off'} (CUDA only), warm-up {settings['warmup']}, "
            f"{settings['rounds']} interleaved rounds. speedup = baseline p50 / p50 per round, "
            "median [p10–p90]. RSS = peak growth over an idle onnxruntime process.")


def bench_table(result: BenchResult) -> tuple[Table, list[str]]:
    """The table, plus the footnotes its notes column points to (notes repeat across rows)."""
    shown = table(f"onnxmend bench — {result.machine.get('cpu_model', '')}",
                  ["subject", "provider", "batch>", "runs>", "p50 ms>", "p90 ms>", "p99 ms>", "mean ± std ms>",
                   "cold ms>", "items/s>", f"speedup vs {result.baseline}>", "RSS MB>", "agrees>", "notes"])
    footnotes: list[str] = []
    for row in result.results:
        shown.add(*_cells(row, footnotes))
    return shown, footnotes


def _cells(row: ArtifactResult, footnotes: list[str]) -> list[Cell | str]:
    head: list[Cell | str] = [row.label, row.provider, str(row.batch)]
    if row.stats is None:
        return head + ["-"] * 10 + [Cell(f"skipped {_mark(f'skipped: {row.reason}', footnotes)}", "warn")]
    s = row.stats
    speed = "-" if row.speedup is None else f"{row.speedup.median:.2f}× [{row.speedup.p10:.2f}–{row.speedup.p90:.2f}]"
    rss = "-" if row.memory is None else f"{row.memory.growth_mb:.0f}"
    marks = [_mark(note, footnotes) for note in row.notes]
    return head + [
        str(s.runs), f"{s.p50_ms:.3f}", f"{s.p90_ms:.3f}", f"{s.p99_ms:.3f}", f"{s.mean_ms:.3f} ± {s.std_ms:.3f}",
        "-" if s.cold_ms is None else f"{s.cold_ms:.2f}", f"{s.throughput:,.0f}", speed, rss, _agrees(row),
        " ".join(marks),
    ]


def _agrees(row: ArtifactResult) -> Cell:
    """Cosine of the subject's outputs to the reference subject's (the source, else the baseline)."""
    found = row.agreement
    if not found:
        return Cell("-")
    if found["vs"] == row.label:
        return Cell("(reference)")
    tone = "good" if found["verdict"] == "pass" else "warn"
    return Cell(f"cos {float(found['min_cosine']):.5f}", tone)  # type: ignore[arg-type]


def _mark(note: str, footnotes: list[str]) -> str:
    if note not in footnotes:
        footnotes.append(note)
    return f"[{footnotes.index(note) + 1}]"
