"""``report.md`` for ``convert``, from the same tables the terminal shows (``flows.tables``)."""

from __future__ import annotations

from onnxmend.core.table import to_markdown
from onnxmend.flows.convert_result import ConvertResult
from onnxmend.flows.interface import interface_table
from onnxmend.flows.layout import LAYOUT_MEANING
from onnxmend.flows.tables import ops_table, parity_table, passes_table, skipped_summary, weights_line


def convert_markdown(result: ConvertResult) -> str:
    v = result.validation
    first = v.comparison.outputs[0] if v.comparison.outputs else None
    provider_note = f"CPU was used because {v.provider_note}." if v.provider_note else ""
    sections = [
        f"# onnxmend convert: {result.source}",
        f"**Verdict: {v.verdict.upper()}** — fixed graph vs {result.export.framework} "
        f"(atol {first.atol if first else 0:g} × scale, rtol {first.rtol if first else 0:g}), "
        f"onnxruntime on {v.provider}. {provider_note}".rstrip(),
        f"Inputs: {v.inputs.summary if v.inputs else 'none ran'}."
        + (f" Pass gate: {result.gate_inputs.summary}." if result.gate_inputs and v.inputs
           and result.gate_inputs.summary != v.inputs.summary else "")
        + (f" Outputs saved to {result.saved_outputs}." if result.saved_outputs else ""),
        f"Exporter: {result.export.exporter}. I/O layout: {result.layout} "
        f"(--layout {result.layout_choice}: {LAYOUT_MEANING[result.layout_choice]}).",
        "## Interface, source → model.onnx" + (" (--keep-interface)" if result.keep_interface else ""),
        to_markdown(interface_table(result.interface)),
        weights_line(result.pipeline),
        "## Parity of the fixed graph (model.onnx)", to_markdown(parity_table(v.comparison, "")),
        *_layers_section(result),
        "## Parity of the raw export (raw.onnx), for reference", to_markdown(parity_table(result.raw_validation.comparison, "")),
        "## Ops, raw → fixed", to_markdown(ops_table(result.before.ops, result.after.ops)),
        *_passes_section(result),
        "## Norm epsilons in the fixed graph", _bullets(_epsilons(result)) or "- no norm nodes",
        "## Export notes", _bullets(result.export.notes) or "- none",
        "## Timings", ", ".join(f"{k} {s:.2f} s" for k, s in result.seconds.items()),
    ]
    return "\n\n".join(sections) + "\n"


def _layers_section(result: ConvertResult) -> list[str]:
    if result.layers is None:
        return []
    return ["## First diverging layer",
            f"**{result.layers.headline()}** — every layer in [layers.md](layers.md), error vs depth in layers.png."]


def _passes_section(result: ConvertResult) -> list[str]:
    report = result.pipeline
    rejected = [f"**{r.name}** rejected: {r.reason}" for r in report.rejected]
    unverified = [f"Not compared numerically: {report.unverified_reason}"] if report.unverified_reason else []
    return [
        f"## Passes ({report.rounds} round(s), {'gated' if report.verified else 'not gated'})",
        to_markdown(passes_table(report)), *unverified,
        "Rejected passes:\n" + (_bullets(rejected) or "- none"),
        "Skipped candidates:\n" + (_bullets(skipped_summary(report)) or "- nothing was skipped"),
    ]


def _epsilons(result: ConvertResult) -> list[str]:
    return [
        f"{e['op']} `{e['node']}`: epsilon {e['epsilon']:g}" + (f" — **{e['note']}**" if e["differs"] else "")
        for e in result.after.epsilons[:60]
    ]


def _bullets(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)
