"""Markdown reports for people (JSON reports are the results' ``to_json``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from onnxmend.pipeline import ConvertResult
    from onnxmend.passes.infra.records import PipelineReport
    from onnxmend.runtime.validate import Validation

# Op types whose counts matter most to the user: shown first in before/after tables.
HEADLINE_OPS = ("Transpose", "Pad", "Shape", "ReduceMean", "Sqrt", "Reciprocal", "LayerNormalization",
                "BatchNormalization", "Conv", "MatMul")


def parity_table(validation: Validation) -> str:
    rows = ["| output | shape | max abs | max abs / scale | cosine | needed atol | verdict |",
            "|---|---|---|---|---|---|---|"]
    for o in validation.comparison.outputs:
        verdict = o.verdict + (f" ({o.reason})" if o.reason else "")
        rows.append(
            f"| {o.name} | {'x'.join(map(str, o.shape))} | {o.max_abs:.3g} | {o.max_abs_scaled:.3g} | "
            f"{o.cosine:.7f} | {o.needed_atol:.3g} | {verdict} |"
        )
    return "\n".join(rows)


def passes_table(report: PipelineReport) -> str:
    rows = ["| pass | round | status | changed | op deltas | reason |", "|---|---|---|---|---|---|"]
    for r in report.records:
        rows.append(f"| {r.name} | {r.round} | {r.status} | {r.changed} | {r.delta_text() or '-'} | {r.reason or '-'} |")
    if not report.records:
        rows.append("| (none changed the graph) | | | | | |")
    return "\n".join(rows)


def op_delta_table(before: dict[str, int], after: dict[str, int]) -> str:
    ops = [op for op in HEADLINE_OPS if before.get(op) or after.get(op)]
    ops += sorted(op for op in set(before) | set(after) if op not in ops and before.get(op, 0) != after.get(op, 0))
    rows = ["| op | raw | fixed |", "|---|---|---|"]
    rows += [f"| {op} | {before.get(op, 0)} | {after.get(op, 0)} |" for op in ops]
    rows.append(f"| **nodes** | {sum(before.values())} | {sum(after.values())} |")
    return "\n".join(rows)


def skipped_summary(report: PipelineReport, limit: int = 20) -> str:
    lines = []
    for name, skips in report.skipped.items():
        reasons: dict[str, int] = {}
        for s in skips:
            reasons[s.reason] = reasons.get(s.reason, 0) + 1
        for reason, count in sorted(reasons.items(), key=lambda kv: -kv[1])[:limit]:
            lines.append(f"- `{name}`: {count}× {reason}")
    return "\n".join(lines) or "- nothing was skipped"


LAYOUT_MEANING = {
    "auto": "Transposes allowed where a fused norm needs them",
    "nchw": "no Transpose added inside the graph",
    "keep": "no Transpose added inside the graph",
}


def convert_markdown(result: ConvertResult) -> str:
    v, raw_v = result.validation, result.raw_validation
    rejected = "\n".join(f"- **{r.name}** rejected: {r.reason}" for r in result.pipeline.rejected) or "- none"
    notes = "\n".join(f"- {n}" for n in result.export.notes) or "- none"
    eps = "\n".join(
        f"- {e['op']} `{e['node']}`: epsilon {e['epsilon']:g}" + (f" — **{e['note']}**" if e["differs"] else "")
        for e in result.after.epsilons[:60]
    ) or "- no norm nodes"
    return f"""# onnxmend convert: {result.source}

**Verdict: {v.verdict.upper()}** — fixed graph vs {result.export.framework} on seeded inputs
(seed {v.seed}, batch {v.batch}, atol {v.comparison.outputs[0].atol if v.comparison.outputs else 0:g} × scale,
rtol {v.comparison.outputs[0].rtol if v.comparison.outputs else 0:g}), onnxruntime on {v.provider}.
{f"CPU was used because {v.provider_note}." if v.provider_note else ""}

Exporter: {result.export.exporter}. I/O layout: {result.layout} (--layout {result.layout_choice}: {LAYOUT_MEANING[result.layout_choice]}).

## Parity of the fixed graph (model.onnx)

{parity_table(v)}

## Parity of the raw export (raw.onnx), for reference

{parity_table(raw_v)}

## Ops, raw → fixed

{op_delta_table(result.before.ops, result.after.ops)}

## Passes ({result.pipeline.rounds} round(s), {"gated" if result.pipeline.verified else "not gated"})

{passes_table(result.pipeline)}

Rejected passes:
{rejected}

Skipped candidates:
{skipped_summary(result.pipeline)}

## Norm epsilons in the fixed graph

{eps}

## Export notes

{notes}

## Timings

{", ".join(f"{k} {s:.2f} s" for k, s in result.seconds.items())}
"""
