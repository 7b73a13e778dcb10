"""What ``validate --layers`` and ``diff`` give back: per-point metrics in network order, the first point
that fails, why, and the map's coverage; as JSON (``report.json``) and Markdown (``report.md``).

"share" is each point's relative L2 error ‖ref − x‖/‖ref‖ over the last point's: how much of the final
error is already present there. Exit code 0 when every point passes, 1 when one diverges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from onnxmend.runtime.compare import Tolerance
from onnxmend.runtime.layers.explain import LayerDetail, is_cause
from onnxmend.runtime.layers.mapping import LayerMap
from onnxmend.runtime.layers.probe import Probe, ProbeResult, ProbeRun


@dataclass
class LayerReport:
    mode: Literal["validate", "diff"]
    subject: str  # the source (validate) or "A vs B" (diff)
    framework: str
    layer_map: LayerMap
    run: ProbeRun
    tolerance: Tolerance
    detail: LayerDetail | None = None  # why the first failing point fails
    cause: LayerDetail | None = None  # the first point (up to the first failure) whose attributes or weights differ
    extra: dict[str, object] = field(default_factory=dict)  # the diff's alignment and sides

    @property
    def results(self) -> list[ProbeResult]:
        return self.run.results

    @property
    def first_failure(self) -> ProbeResult | None:
        return next((r for r in self.results if r.failed), None)

    @property
    def verdict(self) -> str:
        return "mismatch" if self.first_failure is not None else "pass"

    @property
    def exit_code(self) -> int:
        return 1 if self.first_failure is not None else 0

    def shares(self) -> list[float | None]:
        """Each point's relative error as a share of the last measured point's."""
        final = next((r.rel_l2 for r in reversed(self.results) if r.rel_l2 == r.rel_l2), None)
        if not final:
            return [None] * len(self.results)
        return [r.rel_l2 / final if r.rel_l2 == r.rel_l2 else None for r in self.results]

    @property
    def first_wrong(self) -> str | None:
        """The layer to look at first: the earliest point whose attributes or weights differ, if it comes no
        later than the first point over tolerance; else that point."""
        if self.cause is not None:
            return self.cause.label
        return self.first_failure.probe.label if self.first_failure else None

    def headline(self) -> str:
        first = self.first_failure
        if first is None and self.cause is None:
            return f"all {len(self.results)} compared point(s) pass"
        shown = self.cause or self.detail
        line = f"first diverging layer: {self.first_wrong}"
        if shown and shown.differs:
            causes = {k: v for k, v in shown.differs.items() if k != "momentum"}  # momentum: training only
            line += " — " + "; ".join(f"{k} {_v(a)} vs {_v(b)}" for k, (a, b) in causes.items()) if causes else ""
        if shown and shown.weights and not shown.weights.equal:
            line += f" — weights {shown.weights.summary}"
        if first is None:
            line += " (every point is within tolerance)"
        elif self.cause is not None and self.cause.label != first.probe.label:
            there = "not measured there" if self.cause.result.verdict == "not measured" else "within tolerance there"
            line += f" ({there}; over it from {first.probe.label} on)"
        return line

    def to_json(self) -> dict[str, object]:
        return {
            "mode": self.mode, "subject": self.subject, "framework": self.framework, "verdict": self.verdict,
            "headline": self.headline(), "tolerance": {"atol": self.tolerance.atol, "rtol": self.tolerance.rtol},
            "first_failure": self.first_failure.probe.label if self.first_failure else None,
            "first_wrong": self.first_wrong, "cause": self.cause.to_json() if self.cause else None,
            "points": [dict(r.to_json(), share=s) for r, s in zip(self.results, self.shares())],
            "detail": self.detail.to_json() if self.detail else None, "map": self.layer_map.to_json(),
            "cost": {"strategy": self.run.strategy, "runs": self.run.runs, "sessions": self.run.runs,
                     "peak_captured_bytes": self.run.peak_bytes, "seconds": round(self.run.seconds, 3),
                     "capture_seconds": round(self.run.capture_seconds, 3)},
            **self.extra,
        }


def attach_details(report: LayerReport, explainer: Any) -> None:
    """The first failing point's detail, and the first point up to it whose attributes or weights differ
    (a BatchNorm epsilon wrong everywhere can stay within tolerance for a layer or two). Attributes need no
    run, so with bisection the points it did not measure are looked at too. ``explainer`` has
    ``detail(point, result) -> LayerDetail``."""
    measured = {r.probe.label: r for r in report.results}
    first = report.first_failure
    for point in report.layer_map.points:
        result = measured.get(point.label) or ProbeResult(Probe(point.label, point.answer, point.tensor), "not measured")
        detail = explainer.detail(point, result)
        if is_cause(detail):
            report.cause = detail
            break
        if first is not None and point.label == first.probe.label:
            break
    if first is not None:
        point = next(p for p in report.layer_map.points if p.label == first.probe.label)
        report.detail = explainer.detail(point, first)


def layer_markdown(report: LayerReport, plot_name: str | None = "layers.png") -> str:
    lines = [f"# onnxmend {report.mode} --layers: {report.subject}", "", f"**{report.verdict.upper()}** — {report.headline()}", ""]
    m = report.layer_map
    what = "weighted ops aligned, both sides" if report.mode == "diff" else "source layers with weights mapped"
    lines += [f"- coverage: {m.mapped_weighted}/{m.weighted} {what} ({m.coverage:.0%}); "
              f"{len(report.results)} point(s) compared",
              f"- tolerance: atol {report.tolerance.atol:g} × max(1, max|ref|) + rtol {report.tolerance.rtol:g} × |ref|",
              f"- cost: {report.run.runs} run(s) of each side ({report.run.strategy}), "
              f"{report.run.peak_bytes / 2**20:.1f} MiB captured at most at once, {report.run.seconds:.1f} s"]
    lines += [f"- {note}" for note in m.notes + report.run.notes]
    if plot_name:
        lines += ["", f"![error vs depth]({plot_name})"]
    if report.cause and (report.detail is None or report.cause.label != report.detail.label):
        lines += ["", "## First layer whose attributes or weights differ", ""] + detail_lines(report.cause)
    if report.detail:
        lines += ["", "## First layer over tolerance", ""] + detail_lines(report.detail)
    lines += ["", "## Per layer", "", "| # | layer | max abs | max rel | cosine | share | verdict |", "|---|---|---|---|---|---|---|"]
    for i, (r, share) in enumerate(zip(report.results, report.shares())):
        lines.append(f"| {i} | {r.probe.label} | {r.max_abs:.3g} | {r.max_rel:.3g} | {r.cosine:.6f} | "
                     f"{'' if share is None else f'{share:.1%}'} | {r.verdict} {r.reason} |")
    if m.unmapped or m.no_nodes:
        lines += ["", "## Not compared", ""]
        lines += [f"- {name}: " + ("weighted op, aligned with nothing" if report.mode == "diff"
                                   else "has weights, no ONNX node answers for it") for name in m.unmapped]
        lines += [f"- {name}: no ONNX nodes (no weights; identity at inference?)" for name in m.no_nodes]
    return "\n".join(lines) + "\n"


def detail_lines(detail: LayerDetail) -> list[str]:
    source, peers, nodes, other = detail.sides
    lines = [f"`{detail.label}`: max abs {detail.result.max_abs:.3g}, cosine {detail.result.cosine:.6f}", ""]
    for item in detail.source:
        lines.append(f"- {source} `{item['name']}` ({item['kind']}): {_facts(item['facts'])}")
    for item in detail.peers:
        lines.append(f"- {peers} `{item['name']}` ({item['op']}): {_facts(item['facts'])}")
    for item in detail.onnx:
        lines.append(f"- {nodes} `{item['name']}` ({item['op']}): {_facts(item['facts'])}")
    for item in detail.other_source:
        lines.append(f"- {other} `{item['name']}` ({item['kind']}): {_facts(item['facts'])}")
    for key, (a, b) in detail.differs.items():
        note = " (training only)" if key == "momentum" else ""
        lines.append(f"- **{key}: {_v(a)} vs {_v(b)}**{note}")
    if detail.weights is not None:
        lines.append(f"- weights: {detail.weights.summary}")
    return lines


def _facts(facts: dict) -> str:
    shown = {k: v for k, v in facts.items() if k not in ("op",)}
    return ", ".join(f"{k}={_v(v)}" for k, v in shown.items()) or "-"


def _v(value: object) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list) and value and isinstance(value[0], dict):
        return "[" + "; ".join(" ".join(f"{k}={_v(x)}" for k, x in d.items()) for d in value) + "]"
    return str(value)
