"""Runs passes to a capped fixed point and gates every rewrite.

After each pass that changed something the manager runs the ONNX checker and shape inference and, with
``verify``, runs the graph before and after the pass on the same seeded inputs (onnxruntime with all of
its own optimisations off). A pass that breaks the checker or changes the numbers is rolled back, named
in the report with the reason, and not run again; the pipeline goes on with the graph from before it.
"""

from __future__ import annotations

import collections
import logging
import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from onnxmend.passes.base import InterfaceChange, Pass, PassContext, PassResult, Skip
from onnxmend.runtime.compare import compare_outputs
from onnxmend.runtime.inputs import specs_from_model, synthesize
from onnxmend.core.interface import adapt_feeds, read_interface, restore_outputs, write_interface

log = logging.getLogger(__name__)

# Gate tolerance, relative to each output's scale: passes are exact or fold float constants.
GATE_ATOL = 1e-4
GATE_RTOL = 1e-3


@dataclass
class PassRecord:
    name: str
    round: int
    status: str  # "applied", "rejected"
    changed: int
    seconds: float
    deltas: dict[str, tuple[int, int]] = field(default_factory=dict)
    reason: str = ""

    def delta_text(self) -> str:
        return ", ".join(f"{op} {b - a:+d} ({a}→{b})" for op, (a, b) in sorted(self.deltas.items()))

    def to_json(self) -> dict[str, object]:
        return {
            "pass": self.name, "round": self.round, "status": self.status, "changed": self.changed,
            "seconds": round(self.seconds, 4), "reason": self.reason,
            "deltas": {op: {"before": a, "after": b} for op, (a, b) in self.deltas.items()},
        }


@dataclass
class PipelineReport:
    passes: list[str]
    records: list[PassRecord] = field(default_factory=list)
    skipped: dict[str, list[Skip]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    rounds: int = 0
    ops_before: dict[str, int] = field(default_factory=dict)
    ops_after: dict[str, int] = field(default_factory=dict)
    verified: bool = False

    @property
    def rejected(self) -> list[PassRecord]:
        return [r for r in self.records if r.status == "rejected"]

    def to_json(self) -> dict[str, object]:
        return {
            "passes": self.passes, "rounds": self.rounds, "verified": self.verified,
            "applied": [r.to_json() for r in self.records],
            "rejected": [{"pass": r.name, "reason": r.reason} for r in self.rejected],
            "skipped": {p: [{"node": s.node, "reason": s.reason} for s in skips] for p, skips in self.skipped.items()},
            "notes": self.notes, "ops_before": self.ops_before, "ops_after": self.ops_after,
        }


ProgressHook = Callable[[str], None]


def op_histogram(model: onnx.ModelProto) -> dict[str, int]:
    return dict(collections.Counter(n.op_type for n in model.graph.node))


def model_opset(model: onnx.ModelProto) -> int:
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)


def run_passes(
    model: onnx.ModelProto,
    passes: Sequence[Pass],
    ctx: PassContext | None = None,
    verify: bool = True,
    max_rounds: int = 6,
    feeds: Mapping[str, np.ndarray] | None = None,
    progress: ProgressHook | None = None,
) -> tuple[onnx.ModelProto, PipelineReport]:
    """Apply ``passes`` in order, repeatedly, until a round changes nothing or ``max_rounds`` is hit."""
    ctx = ctx or PassContext(opset=model_opset(model))
    report = PipelineReport([p.name for p in passes], ops_before=op_histogram(model), verified=verify)
    model = _infer(model)
    if verify and feeds is None:
        feeds = source_layout_feeds(model)
    reference = None
    if verify:
        try:
            reference = _run(model, feeds)
        except Exception as exc:  # the input graph itself may not run (e.g. ORT rejects a dilated SAME Conv)
            verify = report.verified = False
            report.notes["gate"] = [
                f"onnxruntime cannot run the input graph ({_first_line(exc)}); passes were checked "
                "structurally but not compared numerically."
            ]
    disabled: set[str] = set()
    # The imported graph of ``model``, reused while passes leave it unchanged (importing is the costliest
    # step on big graphs); dropped whenever a pass changed it, applied or rejected.
    graph: gs.Graph | None = None
    for round_no in range(1, max_rounds + 1):
        report.rounds = round_no
        changed_this_round = False
        for p in passes:
            if p.name in disabled:
                continue
            if progress:
                progress(f"round {round_no}: {p.name}")
            new_model, record, result, graph = _apply_one(model, p, ctx, round_no, graph)
            report.skipped[p.name] = result.skipped
            if result.notes:
                report.notes[p.name] = result.notes
            if record is None:
                continue
            if record.status == "applied" and verify:
                record.reason = _gate(new_model, reference, feeds)
                if record.reason:
                    record.status = "rejected"
            report.records.append(record)
            if record.status == "rejected":
                log.warning("pass %s rejected: %s", p.name, record.reason)
                disabled.add(p.name)
                continue
            model = new_model
            changed_this_round = True
        if not changed_this_round:
            break
    report.ops_after = op_histogram(model)
    return model, report


def _apply_one(
    model: onnx.ModelProto, p: Pass, ctx: PassContext, round_no: int, graph: gs.Graph | None = None
) -> tuple[onnx.ModelProto, PassRecord | None, PassResult, gs.Graph | None]:
    """Run ``p`` on ``graph`` (``model`` imported, unless the caller still holds it).

    A pass that reports no change must leave the graph as it found it, so the graph is handed back for
    the next pass; after a change it is not (the new model is re-imported with inferred shapes).
    """
    start = time.perf_counter()
    graph = graph if graph is not None else gs.import_onnx(model)
    result = p.apply(graph, ctx)
    if result.discard:
        return model, None, result, None
    if not result.changed:
        return model, None, result, graph
    graph.cleanup(remove_unused_graph_inputs=False).toposort()
    new_model = _export_like(graph, model, result.interface)
    record = PassRecord(p.name, round_no, "applied", result.changed, 0.0)
    try:
        onnx.checker.check_model(new_model, full_check=False)
        new_model = _infer(new_model, strict=True)
    except Exception as exc:  # checker and inference raise several types
        record.status, record.reason = "rejected", f"the rewritten graph is invalid: {_first_line(exc)}"
    record.seconds = time.perf_counter() - start
    before, after = op_histogram(model), op_histogram(new_model)
    record.deltas = {
        op: (before.get(op, 0), after.get(op, 0))
        for op in sorted(set(before) | set(after)) if before.get(op, 0) != after.get(op, 0)
    }
    return new_model, record, result, None


def _export_like(graph: gs.Graph, like: onnx.ModelProto, interface: list[InterfaceChange]) -> onnx.ModelProto:
    """Export ``graph`` keeping the original model's IR version, producer and metadata."""
    model = gs.export_onnx(graph, do_type_check=False)
    model.ir_version = like.ir_version
    model.producer_name, model.producer_version = like.producer_name, like.producer_version
    model.metadata_props.extend(like.metadata_props)
    if interface:
        merged = read_interface(model)
        for change in interface:
            merged[change.tensor] = _compose(merged.get(change.tensor), change)
        write_interface(model, merged)
    return model


def _compose(previous: Mapping[str, object] | None, change: InterfaceChange) -> dict[str, object]:
    if previous is None:
        return change.to_json()
    perm = [previous["perm"][i] for i in change.perm]  # type: ignore[index]
    composed = {"kind": change.kind, "perm": perm, "was": previous["was"], "now": change.now}
    return composed


def _infer(model: onnx.ModelProto, strict: bool = False) -> onnx.ModelProto:
    try:
        return onnx.shape_inference.infer_shapes(model, check_type=strict, strict_mode=strict, data_prop=True)
    except Exception:
        if strict:
            raise
        return model


def source_layout_feeds(model: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded inputs in the layout of the original source, whatever passes did to the interface."""
    interface = read_interface(model)
    specs = []
    for spec in specs_from_model(model):
        change = interface.get(spec.name)
        if change and change["kind"] == "input":
            shape = [None] * len(spec.shape)
            for j, axis in enumerate(change["perm"]):  # type: ignore[union-attr]
                shape[axis] = spec.shape[j]
            spec = type(spec)(spec.name, tuple(shape), spec.dtype, spec.layout, spec.value_range)
        specs.append(spec)
    return synthesize(specs, seed=seed)


def _run(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray] | None) -> dict[str, np.ndarray]:
    from onnxmend.runtime.session import create_session

    session = create_session(model, provider="cpu", opt_level="disable")
    return restore_outputs(session.run(adapt_feeds(feeds or {}, model)), model)


def _gate(model: onnx.ModelProto, reference: Mapping[str, np.ndarray] | None, feeds) -> str:
    """Empty string when ``model`` still computes ``reference``; otherwise why not."""
    try:
        outputs = _run(model, feeds)
    except Exception as exc:
        return f"onnxruntime cannot run the rewritten graph: {_first_line(exc)}"
    comparison = compare_outputs(reference or {}, outputs, GATE_ATOL, GATE_RTOL)
    bad = [o for o in comparison.outputs if o.verdict == "mismatch"]
    if bad:
        worst = max(bad, key=lambda o: o.max_abs_scaled)
        return f"output {worst.name} changed (max abs diff {worst.max_abs:.3g}, cosine {worst.cosine:.6f})"
    return ""


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:300]
