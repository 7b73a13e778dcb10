"""Runs passes to a capped fixed point and gates every rewrite.

Before a pass first runs, its precondition (:meth:`Pass.requires`) is checked once; a pass whose
precondition fails is recorded under ``not_run`` with the reason and never runs. After each pass that
changed something the manager runs the ONNX checker and strict shape inference and, when a numeric
:class:`Gate` is given, asks it whether the rewritten graph still computes what the input graph
computed. A pass that raises, breaks the checker or changes the numbers is rolled back, named in the
report with the reason, and not run again; the pipeline goes on with the graph from before it.

The manager never runs a model itself: the gate is built by the flow (``onnxmend.runtime.gate``) and
handed in, so this floor needs no onnxruntime.
"""

from __future__ import annotations

import logging
import time
from typing import Callable, Mapping, Protocol, Sequence

import onnx
import onnx_graphsurgeon as gs

from onnxmend.core.errors import first_line
from onnxmend.core.graph import infer_shapes, model_opset, op_histogram
from onnxmend.core.interface import read_interface, write_interface
from onnxmend.passes.infra.base import InterfaceChange, Pass, PassContext, PassResult
from onnxmend.passes.infra.records import PassRecord, PipelineReport

log = logging.getLogger(__name__)

ProgressHook = Callable[[str], None]


class Gate(Protocol):
    """Judges a rewritten model against the pipeline's input model."""

    @property
    def unavailable(self) -> str:
        """Why the gate cannot compare anything (empty when it can)."""

    def check(self, model: onnx.ModelProto) -> str:
        """Empty when ``model`` still computes the input model's outputs; otherwise why not."""


def run_passes(
    model: onnx.ModelProto,
    passes: Sequence[Pass],
    ctx: PassContext | None = None,
    gate: Gate | None = None,
    max_rounds: int = 6,
    progress: ProgressHook | None = None,
) -> tuple[onnx.ModelProto, PipelineReport]:
    """Apply ``passes`` in order, repeatedly, until a round changes nothing or ``max_rounds`` is hit."""
    ctx = ctx or PassContext(opset=model_opset(model))
    report = PipelineReport([p.name for p in passes], ops_before=op_histogram(model))
    if gate is not None and gate.unavailable:
        report.unverified_reason = gate.unavailable
        report.notes["gate"] = [gate.unavailable]
        gate = None
    report.verified = gate is not None
    model = infer_shapes(model)
    runner = _Pipeline(passes, ctx, gate, report, progress)
    for round_no in range(1, max_rounds + 1):
        report.rounds = round_no
        model, changed = runner.round(model, round_no)
        if not changed:
            break
    report.ops_after = op_histogram(model)
    return model, report


class _Pipeline:
    """The state of one pipeline run: which passes are out, and the imported graph while it is reusable."""

    def __init__(self, passes: Sequence[Pass], ctx: PassContext, gate: Gate | None, report: PipelineReport,
                 progress: ProgressHook | None) -> None:
        self.passes, self.ctx, self.gate, self.report = passes, ctx, gate, report
        self.progress = progress
        self.disabled: set[str] = set()
        self.checked: set[str] = set()
        # The imported graph of the current model, reused while passes leave it unchanged (importing is
        # the costliest step on big graphs); dropped whenever a pass changed it, applied or rejected.
        self.graph: gs.Graph | None = None

    def round(self, model: onnx.ModelProto, round_no: int) -> tuple[onnx.ModelProto, bool]:
        changed = False
        for p in self.passes:
            if p.name in self.disabled:
                continue
            if self.progress:
                self.progress(f"round {round_no}: {p.name}")
            if not self._precondition_holds(model, p):
                continue
            new_model, record = self._apply(model, p, round_no)
            if record is None:
                continue
            if record.status == "applied" and self.gate is not None:
                record.reason = self.gate.check(new_model)
                record.status = "rejected" if record.reason else "applied"
            self.report.records.append(record)
            if record.status == "rejected":
                log.warning("pass %s rejected: %s", p.name, record.reason)
                self.disabled.add(p.name)
                continue
            model, changed = new_model, True
        return model, changed

    def _precondition_holds(self, model: onnx.ModelProto, p: Pass) -> bool:
        """Check ``p.requires`` once per pipeline; a failed precondition disables the pass for good."""
        if p.name in self.checked:
            return True
        self.checked.add(p.name)
        self.graph = self.graph if self.graph is not None else gs.import_onnx(model)
        try:
            reason = p.requires(self.graph, self.ctx)
        except Exception as exc:  # a precondition that raises is a failed precondition, with its reason
            reason = f"its precondition check raised {type(exc).__name__}: {first_line(exc)}"
        if reason:
            self.report.not_run[p.name] = reason
            self.disabled.add(p.name)
            return False
        return True

    def _apply(self, model: onnx.ModelProto, p: Pass, round_no: int) -> tuple[onnx.ModelProto, PassRecord | None]:
        """Run ``p`` once. A pass that reports no change must leave the graph as it found it, so the graph
        is kept for the next pass; after a change (or an exception) it is not."""
        start = time.perf_counter()
        graph = self.graph if self.graph is not None else gs.import_onnx(model)
        self.graph = None
        try:
            result = p.apply(graph, self.ctx)
        except Exception as exc:  # a pass bug must cost the user that pass, never the pipeline
            log.debug("pass %s raised", p.name, exc_info=True)
            reason = f"the pass raised {type(exc).__name__}: {first_line(exc)}"
            return model, PassRecord(p.name, round_no, "rejected", 0, time.perf_counter() - start, reason=reason)
        self._note(p.name, result)
        if result.discard:
            return model, None
        if not result.changed:
            self.graph = graph
            return model, None
        new_model, record = _export_checked(graph, model, result, p.name, round_no)
        record.seconds = time.perf_counter() - start
        return new_model, record

    def _note(self, name: str, result: PassResult) -> None:
        self.report.skipped[name] = result.skipped
        if result.notes:
            self.report.notes[name] = result.notes


def _export_checked(graph: gs.Graph, model: onnx.ModelProto, result: PassResult, name: str,
                    round_no: int) -> tuple[onnx.ModelProto, PassRecord]:
    """The rewritten graph as a model, checked by the ONNX checker and strict shape inference."""
    record = PassRecord(name, round_no, "applied", result.changed, 0.0)
    try:
        graph.cleanup(remove_unused_graph_inputs=False).toposort()
        new_model = _export_like(graph, model, result.interface)
        onnx.checker.check_model(new_model, full_check=False)
        new_model = infer_shapes(new_model, strict=True)
    except Exception as exc:  # export, checker and inference raise several types
        record.status, record.reason = "rejected", f"the rewritten graph is invalid: {first_line(exc)}"
        return model, record
    before, after = op_histogram(model), op_histogram(new_model)
    record.deltas = {
        op: (before.get(op, 0), after.get(op, 0))
        for op in sorted(set(before) | set(after)) if before.get(op, 0) != after.get(op, 0)
    }
    return new_model, record


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
    return {"kind": change.kind, "perm": perm, "was": previous["was"], "now": change.now}
