"""Runs passes to a capped fixed point and gates every rewrite — in rounds on one graph, checked once.

A round imports nothing: every pass rewrites the same onnx-graphsurgeon graph, and after a pass that
changed something the manager sweeps dead nodes, re-sorts and infers the new tensors' shapes locally
(linear in what changed). Rounds follow one another on that graph until one changes nothing; only then is
the graph exported and checked, once for all of them: the ONNX checker, strict shape inference and, when a
numeric :class:`Gate` is given, the gate (asked whether it can compare only then: it may take its
references in the background while the first round runs). The shapes that check inferred go back onto the
graph; where they changed a tensor's, passes may find more, so the rounds go on (and are checked again).
When a check fails, the passes applied since the last one are bisected (replayed from the last checked
model, each probe exporting and checking a prefix) to find the first pass that breaks it; that pass is
rejected with the reason, never runs again, and those rounds are redone without it. A pass that raises or
gives up halfway is rejected (or dropped) the same way, its partial edits discarded by replaying up to it.
On a 100,000-node chain this is two exports and checks fewer than one per round.

The check also holds the weights to a growth limit (:mod:`onnxmend.passes.infra.growth`,
``max_growth`` times the input's, 1.5 by default): a pass whose rewrite makes them larger is rejected with
the growth stated, found by the same bisection.

A pass is not run again while the graph is still the one it last found nothing to change on (passes are
deterministic): the last round, which only confirms the fixed point, runs just the passes that have not yet
seen the final graph.

Before a pass first runs, its precondition (:meth:`Pass.requires`) is checked once; a pass whose
precondition fails is recorded under ``not_run`` with the reason and never runs.

The manager never runs a model itself: the gate is built by the flow (``onnxmend.runtime.gate``) and
handed in, so this floor needs no onnxruntime.
"""

from __future__ import annotations

import contextlib
import gc
import logging
from concurrent.futures import wait
from dataclasses import dataclass, field
from typing import Callable, Iterator, Protocol, Sequence

import onnx
import onnx_graphsurgeon as gs

from onnxmend.core.background import in_thread
from onnxmend.core.errors import first_line
from onnxmend.core.graph import model_opset, op_histogram, weight_bytes
from onnxmend.core.isolated import infer_shapes_isolated
from onnxmend.core.large import check_model, is_heavy
from onnxmend.passes.infra.base import Pass, PassContext
from onnxmend.passes.infra.growth import DEFAULT_MAX_GROWTH, GrowthLimit
from onnxmend.passes.infra.provenance import import_graph
from onnxmend.passes.infra.records import PassRecord, PipelineReport
from onnxmend.passes.infra.round_ops import (
    Applied,
    apply_once,
    export_like,
    first_graph,
    interface_moved,
    refresh_shapes,
)

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
    max_growth: float = DEFAULT_MAX_GROWTH,
) -> tuple[onnx.ModelProto, PipelineReport]:
    """Apply ``passes`` in order, repeatedly, until a round changes nothing or ``max_rounds`` is hit.

    A rewrite that grows the weights past ``max_growth`` times the input's is rejected (``inf``: no limit).
    """
    ctx = ctx or PassContext(opset=model_opset(model))
    report = PipelineReport([p.name for p in passes], ops_before=op_histogram(model),
                            weights_before=weight_bytes(model), max_growth=max_growth)
    growth = GrowthLimit(report.weights_before, max_growth)
    pipeline = _Pipeline(list(passes), ctx, gate, growth, report, progress)
    with collector_paused():
        model = pipeline.run(model, max_rounds)
    report.verified = pipeline.usable_gate() is not None
    if is_heavy(model):
        # The last round's graph and each round's input model are garbage in reference cycles (graphsurgeon
        # constants still point at their tensors): freed now, not whenever the collector next runs.
        gc.collect()
    report.ops_after = op_histogram(model)
    report.weights_after = weight_bytes(model)
    return model, report


@contextlib.contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the pipeline, as it was before afterwards.

    A graphsurgeon graph is millions of objects in reference cycles (node ⇄ tensor) that stay alive for
    the whole run; every full collection walks them all, and the allocations of import, passes and export
    trigger dozens: 12 of 44 s on a 100,000-node graph. What a pipeline throws away is freed without it:
    swept nodes are disconnected (their cycles broken, so reference counting frees them), and where a
    whole graph is dropped (a rejected pass's replay) the manager collects once itself.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@dataclass
class _Pipeline:
    passes: list[Pass]
    ctx: PassContext
    gate: Gate | None
    growth: GrowthLimit
    report: PipelineReport
    progress: ProgressHook | None
    disabled: set[str] = field(default_factory=set)
    checked: set[str] = field(default_factory=set)
    gate_asked: bool = False
    edits: int = 0  # how many times the rounds' graph has changed (a pass, new shapes, a new import)
    found_nothing_at: dict[str, int] = field(default_factory=dict)  # pass → ``edits`` when it last did nothing

    def usable_gate(self) -> Gate | None:
        """The gate, or None when it cannot compare (the reason goes into the report). Asked when the first
        check is due, not before: a gate may still be taking its references while the first round runs."""
        if self.gate is not None and not self.gate_asked:
            self.gate_asked = True
            why = self.gate.unavailable
            if why:
                self.report.unverified_reason = why
                self.report.notes["gate"] = [why]
                self.gate = None
        return self.gate

    def run(self, model: onnx.ModelProto, max_rounds: int) -> onnx.ModelProto:
        model, graph = first_graph(model)  # untrusted: its shapes are inferred in a worker
        while self.report.rounds < max_rounds:
            model, graph, go_on = self._checked_rounds(model, graph, max_rounds)
            if not go_on:
                break
        return model

    def _checked_rounds(self, model: onnx.ModelProto, graph: gs.Graph,
                        max_rounds: int) -> tuple[onnx.ModelProto, gs.Graph, bool]:
        """Rounds on ``graph`` (the import of ``model``) until one changes nothing, then one check of them
        all; redone without a pass that breaks it. True when the check's shapes, put back onto the graph,
        changed some tensor's: passes may find more with them, so the rounds go on."""
        first = self.report.rounds
        while True:
            self.report.rounds = first
            graph, applied = self._rounds(model, graph, max_rounds)
            if not applied:
                return model, graph, False
            new_model, reason = self._finish(graph, model, applied)
            if not reason:
                self.report.records += [a.record for a in applied]
                reshaped = refresh_shapes(graph, new_model) > 0
                self.edits += reshaped
                return new_model, graph, reshaped
            culprit, why = self._bisect(model, applied, reason)
            self._reject(culprit.record, why)
            del graph  # the rounds' graph and the bisection's replays: garbage in reference cycles
            gc.collect()
            graph = import_graph(model)
            self.edits += 1

    def _rounds(self, model: onnx.ModelProto, graph: gs.Graph, max_rounds: int) -> tuple[gs.Graph, list[Applied]]:
        """Every pass in order, round after round on the same graph, until a round changes nothing."""
        applied: list[Applied] = []
        while self.report.rounds < max_rounds:
            self.report.rounds += 1
            graph, more = self._apply_all(model, graph, self.report.rounds, applied)
            if not more:
                break
            applied += more
        return graph, applied

    def _apply_all(self, model: onnx.ModelProto, graph: gs.Graph, round_no: int,
                   earlier: list[Applied]) -> tuple[gs.Graph, list[Applied]]:
        """One round: every pass once. A pass that fails is rejected and its partial edits dropped by
        replaying ``model`` with what was applied before it (``earlier`` rounds' passes, then this one's)."""
        applied: list[Applied] = []
        counts: dict[str, int] | None = None  # the graph's op counts, carried from pass to pass
        for p in self.passes:
            if p.name in self.disabled or not self._precondition_holds(graph, p):
                continue
            if self.found_nothing_at.get(p.name) == self.edits:
                continue  # the graph is still the one it found nothing to change on (passes are deterministic)
            if self.progress:
                self.progress(f"round {round_no}: {p.name}")
            outcome = apply_once(graph, p, self.ctx, round_no, counts)
            self._note(p.name, outcome)
            counts = outcome.counts
            if outcome.failure or outcome.result.discard:
                if outcome.failure:
                    self._reject(outcome.record, outcome.failure)
                del graph  # drop the partial edits (a graph in reference cycles: collected here)
                gc.collect()
                graph, counts = self._replay(model, earlier + applied), None
                self.edits += 1
            elif outcome.result.changed:
                applied.append(outcome)
                self.edits += 1
            else:
                self.found_nothing_at[p.name] = self.edits
        return graph, applied

    def _finish(self, graph: gs.Graph, like: onnx.ModelProto, applied: list[Applied]) -> tuple[onnx.ModelProto, str]:
        """Export the rounds' graph and check it once: checker, strict shape inference, the gate.

        The gate and shape inference run the exported model in their own workers while this process runs
        the checker (all three read the model; a heavy one, which inference writes onto in place, is
        inferred and judged after the checker): the workers busy at once instead of one after the other."""
        try:
            model = export_like(graph, like, [change for a in applied for change in a.result.interface])
        except Exception as exc:  # graphsurgeon's exporter raises several types
            return like, f"the rewritten graph is invalid: {first_line(exc)}"
        gate, heavy = self.usable_gate(), is_heavy(model)
        verdict = in_thread(gate.check, model, name="onnxmend-gate-check") if gate is not None and not heavy else None
        inferred = None if heavy else in_thread(infer_shapes_isolated, model, "the rewritten graph", True,
                                                name="onnxmend-shapes-check")
        try:
            check_model(model)  # on a skeleton past 64 MiB: the checker does not read the weights
            model = inferred.result() if inferred else infer_shapes_isolated(model, "the rewritten graph",
                                                                             strict=True, in_place=True)
        except Exception as exc:  # checker and inference raise several types
            invalid = f"the rewritten graph is invalid: {first_line(exc)}"
        else:
            invalid = self.growth.check(model) or (interface_moved(like, model) if self.ctx.keep_interface else "")
        wait([f for f in (verdict, inferred) if f is not None])  # also when not needed: one call per worker at a time
        if invalid:
            return like, invalid
        reason = verdict.result() if verdict is not None else gate.check(model) if gate is not None else ""
        return (like, reason) if reason else (model, "")

    def _bisect(self, model: onnx.ModelProto, applied: list[Applied], reason: str) -> tuple[Applied, str]:
        """The first applied pass whose prefix fails the round's check, and that prefix's reason."""
        low, high, why = 0, len(applied) - 1, reason  # the prefix ending at ``high`` is known to fail
        while low < high:
            middle = (low + high) // 2
            graph = self._replay(model, applied[: middle + 1])
            _, failure = self._finish(graph, model, applied[: middle + 1])
            del graph  # each probe's graph is garbage in reference cycles: freed before the next is built
            gc.collect()
            if failure:
                high, why = middle, failure
            else:
                low = middle + 1
        return applied[low], why

    def _replay(self, model: onnx.ModelProto, applied: list[Applied]) -> gs.Graph:
        """``model`` imported afresh with ``applied`` passes run again on it, in order (they are deterministic)."""
        graph = import_graph(model)
        for done in applied:
            apply_once(graph, done.pass_, self.ctx, done.record.round)
        return graph

    def _reject(self, record: PassRecord, reason: str) -> None:
        record.status, record.reason = "rejected", reason
        self.report.records.append(record)
        self.disabled.add(record.name)
        log.warning("pass %s rejected: %s", record.name, reason)

    def _precondition_holds(self, graph: gs.Graph, p: Pass) -> bool:
        """Check ``p.requires`` once per pipeline; a failed precondition disables the pass for good."""
        if p.name in self.checked:
            return True
        self.checked.add(p.name)
        try:
            reason = p.requires(graph, self.ctx)
        except Exception as exc:  # a precondition that raises is a failed precondition, with its reason
            reason = f"its precondition check raised {type(exc).__name__}: {first_line(exc)}"
        if reason:
            self.report.not_run[p.name] = reason
            self.disabled.add(p.name)
            return False
        return True

    def _note(self, name: str, outcome: Applied) -> None:
        self.report.skipped[name] = outcome.result.skipped
        if outcome.result.notes:
            self.report.notes[name] = outcome.result.notes
