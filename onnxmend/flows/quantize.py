"""``quantize``: pre-process, plan, quantize, gate and write the int8 artifact folder.

The steps are runtime's (:mod:`onnxmend.runtime.quantize`); this flow orders them, turns a SOURCE into
its runner when the gate should also compare with the source framework, and is what both
``onnxmend quantize`` and ``convert --quantize`` call, with the same seed, threads and provider.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Literal

import onnx
import onnx_graphsurgeon as gs

from onnxmend.core import fileio
from onnxmend.core.graph import model_opset
from onnxmend.core.interface import adapt_feeds
from onnxmend.core.outputs import claim_dir
from onnxmend.exporters import Export, ExportOptions, export
from onnxmend.flows.data import prepare
from onnxmend.passes.infra.base import PassContext
from onnxmend.passes.infra.catalogue import resolve
from onnxmend.passes.infra.manager import run_passes
from onnxmend.passes.infra.presets import PREPARE_FOR_INT8
from onnxmend.runtime.compare import Comparison, Thresholds
from onnxmend.runtime.data import (
    COMPARE_CAP,
    DataOptions,
    InputFile,
    InputsUsed,
    LoadedInputs,
    fit_model,
    save_outputs,
    shapes_of,
    synthetic_inputs,
    to_model_layout,
)
from onnxmend.runtime.gate import NumericGate
from onnxmend.runtime.quantize.accuracy import GateInputs, accuracy_runs, gate_accuracy, gate_inputs, layer_errors
from onnxmend.runtime.quantize.manifest import ArtifactContents, ArtifactPaths, write_artifacts
from onnxmend.runtime.quantize.performance import measure_latency, node_placement
from onnxmend.runtime.quantize.plan import PlanOverrides, QuantPlan, Target, build_plan
from onnxmend.runtime.quantize.quantizer import Prepared, preprocess, resolve_provider, run_quantizer
from onnxmend.runtime.quantize.worth import weight_share
from onnxmend.runtime.runners import Runner, source_runner

Scores = tuple[Comparison, Comparison | None]  # the int8 graph vs fp32, and vs the source when there is one


@dataclass
class QuantizeResult:
    paths: ArtifactPaths
    contents: ArtifactContents
    manifest: dict[str, object]
    saved_outputs: Path | None = None

    @property
    def passed(self) -> bool:
        return self.contents.passed

    @property
    def plan(self) -> QuantPlan:
        return self.contents.plan


def quantize(
    model_path: str | Path, out_dir: str | Path, overrides: PlanOverrides = PlanOverrides(),
    provider: Literal["auto", "cpu", "cuda"] = "auto", source: str | Export | None = None,
    thresholds: Thresholds = Thresholds(), layers: bool = False, batches: int = 3, seed: int = 0,
    latency_runs: int = 20, threads: int = 2, on_plan: Callable[[QuantPlan], None] | None = None,
    report_name: str = "report.md", trust_source: bool = False, force: bool = False,
    allow_no_gain: bool = False, progress: Callable[[str], None] | None = None,
    data: DataOptions = DataOptions(), loaded: LoadedInputs | None = None,
) -> QuantizeResult:
    """Quantize ``model_path`` dynamically to int8 into ``out_dir``; the input file is never modified.

    ``source`` (a SOURCE string or an export already made) adds a gate against the source framework.
    ``on_plan`` sees the plan before the quantizer runs (the CLI prints it). The gate judges accuracy, and
    whether the artifact is worth shipping (smaller, not slower: :mod:`onnxmend.runtime.quantize.worth`);
    ``allow_no_gain`` accepts one that is not. A failing gate still writes every file; check
    ``result.passed`` and ``result.contents.verdict``.
    ``data.load`` gates accuracy on the user's inputs (``loaded``: already fitted, in the source's layout)
    instead of ``batches`` seeded ones; ``data.save`` writes the ``fp32/``, ``int8/`` (``source/``) outputs.
    """
    say = progress or (lambda _msg: None)
    model_path, out_dir = Path(model_path), Path(out_dir)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    fp32 = fileio.load_model(model_path)
    paths = ArtifactPaths.inside(out_dir, model_path, report_name)
    written = [p.name for p in (paths.fp32, paths.int8, paths.manifest, paths.report)
               if p.resolve() != model_path.resolve()]  # the input may already be the folder's model.onnx
    claim_dir(out_dir, written, force)
    loaded = loaded or _loaded(prepare(data, force, protect=[model_path, *(out_dir / n for n in written)]), fp32)
    target, provider_why = resolve_provider(provider)
    reference = _source_runner(source, seed, trust_source)
    say("preparing the graph for int8")
    prepared, prep_notes = _prepared(model_path, fp32, overrides, seed)
    plan = _name_spelled_convs(build_plan(prepared.model, target, overrides), fp32)
    plan.reasons["provider"] = provider_why
    if on_plan:
        on_plan(plan)
    timings["preprocess_and_plan"], clock = time.perf_counter() - clock, time.perf_counter()
    inputs, used = _gate_inputs(fp32, reference, batches, seed, loaded)
    plan, int8, (vs_fp32, vs_source), retried = _quantize_gated(prepared.model, plan, overrides, fp32, inputs,
                                                               target, thresholds, say)
    prep_notes += retried
    model_feeds = adapt_feeds(inputs.feeds[0], fp32)  # the layout the fp32 graph itself takes
    layer_report = layer_errors(prepared.model, int8, model_feeds) if layers else None
    timings["quantize_and_gate"], clock = time.perf_counter() - clock, time.perf_counter()
    say("timing fp32 and int8 side by side")
    placement = node_placement(int8, target, model_feeds)
    latency = measure_latency(fp32, int8, model_feeds, provider=target, runs=latency_runs, threads=threads) \
        if latency_runs else None
    timings["placement_and_latency"] = time.perf_counter() - clock
    contents = ArtifactContents(model_path, plan, prepared.method, prepared.notes, thresholds, vs_fp32, vs_source,
                                layer_report, placement, latency, timings, weight_share(prepared.model, plan),
                                prep_notes, allow_no_gain, inputs=used)
    return _save(QuantizeResult(paths, contents, write_artifacts(paths, int8, contents)), data.save, fp32, int8, inputs,
                 target)


def _loaded(file: InputFile | None, fp32: onnx.ModelProto) -> LoadedInputs | None:
    return fit_model(file, fp32) if file is not None else None


def _gate_inputs(fp32: onnx.ModelProto, reference: Runner | None, batches: int, seed: int,
                 loaded: LoadedInputs | None) -> tuple[GateInputs, InputsUsed]:
    """The gate's inputs (seeded batches, or the loaded samples) and the statement of which they were."""
    inputs = gate_inputs(fp32, reference, batches, seed, loaded.take(COMPARE_CAP) if loaded is not None else None)
    used = loaded.used(len(inputs.feeds)) if loaded is not None else \
        synthetic_inputs([seed + i for i in range(len(inputs.feeds))], [shapes_of(f) for f in inputs.feeds])
    return inputs, used


def _save(result: QuantizeResult, path: Path | None, fp32: onnx.ModelProto, int8: onnx.ModelProto,
          inputs: GateInputs, target: Target) -> QuantizeResult:
    """``--save-outputs``: fp32's and the int8 artifact's outputs (and the source's) on the gate's inputs."""
    if path is None:
        return result
    contents = result.contents
    runs = accuracy_runs(fp32, int8, inputs, target)  # as the gate ran them
    groups = {"fp32": [to_model_layout(r, fp32) for r in runs["fp32"]], "int8": [to_model_layout(r, fp32) for r in runs["int8"]]}
    what = {"fp32": f"{contents.input_path} on onnxruntime CPU",
            "int8": f"{result.paths.int8} on onnxruntime {contents.placement.provider or 'CPU'}"}
    if inputs.source_runs is not None:
        groups["source"], what["source"] = inputs.source_runs, inputs.source_label
    result.saved_outputs = save_outputs(path, groups, what, contents.inputs)  # type: ignore[arg-type]
    return result


def _quantize_gated(model: onnx.ModelProto, plan: QuantPlan, overrides: PlanOverrides, fp32: onnx.ModelProto,
                    inputs: GateInputs, target: Target, thresholds: Thresholds,
                    say: Callable[[str], None]) -> tuple[QuantPlan, onnx.ModelProto, Scores, list[str]]:
    """Quantize and gate; when per-tensor weights miss the accuracy gate and the user left per-channel to the
    plan, requantize with per-channel weights (BatchNorm folded into a Conv gives every output channel its
    own range) and keep that artifact when it scores better; the note says what happened."""
    say(f"quantizing {len(plan.selected)} nodes, checking accuracy on {len(inputs.feeds)} batches")
    int8 = run_quantizer(model, plan)
    scores = gate_accuracy(fp32, int8, inputs, target, thresholds)
    if _accurate(scores) or overrides.per_channel is not None or plan.per_channel:
        return plan, int8, scores, []
    say("requantizing with per-channel weights")
    channel_plan = replace(plan, per_channel=True, reasons=dict(plan.reasons),
                           nodes=[replace(n, per_channel=n.quantize and n.op_type in ("MatMul", "Gemm")) for n in plan.nodes])
    retry = run_quantizer(model, channel_plan)
    retry_scores = gate_accuracy(fp32, retry, inputs, target, thresholds)
    before, after = _min_cosine(scores), _min_cosine(retry_scores)
    missed = "; ".join(f for report in scores if report for f in report.failures)
    if after <= before:
        return plan, int8, scores, [f"per-tensor weights missed the gate ({missed}); per-channel weights scored no "
                                    f"better (cosine {after:.5f}), so the per-tensor artifact is kept"]
    channel_plan.reasons["per_channel"] = (f"on: per-tensor weights missed the accuracy gate ({missed}); "
                                           f"per-channel weights reach cosine {after:.5f}")
    return channel_plan, retry, retry_scores, [f"requantized with per-channel weights: cosine {before:.5f} → {after:.5f}"]


def _accurate(scores: Scores) -> bool:
    return all(report.passed for report in scores if report is not None)


def _min_cosine(scores: Scores) -> float:
    return min((o.cosine for report in scores if report for o in report.outputs), default=1.0)


def _name_spelled_convs(plan: QuantPlan, fp32: onnx.ModelProto) -> QuantPlan:
    """A MatMul (or the Gemm pre-processing fused it into) that pointwise-conv-to-matmul made of a 1x1 Conv
    says so, with the Conv's name: its node is named CONV/MatMul[/...]."""
    convs = {n.name for n in fp32.graph.node if n.op_type == "Conv"}
    for index, node in enumerate(plan.nodes):
        parts = node.name.split("/MatMul")
        base = next((m for m in ("/MatMul".join(parts[:i]) for i in range(1, len(parts))) if m in convs), None)
        if node.op_type in ("MatMul", "Gemm") and base:
            plan.nodes[index] = replace(node, reason=f"{node.reason}; the 1x1 Conv {base} of the input, as a MatMul")
    return plan


def _prepared(model_path: Path, fp32: onnx.ModelProto, overrides: PlanOverrides, seed: int) -> tuple[Prepared, list[str]]:
    """The pre-processed graph to quantize: with its 1x1 Convs spelled as MatMuls (gated) unless Conv itself
    is quantized; the notes say what was rewritten."""
    if overrides.ops is not None and "Conv" in overrides.ops:
        return preprocess(model_path), []
    rewritten, notes = prepare_for_int8(fp32, seed)
    if rewritten is None:
        return preprocess(model_path), notes
    with tempfile.TemporaryDirectory(prefix="onnxmend-int8-") as tmp:
        path = Path(tmp) / "prepared.onnx"
        fileio.save_model(rewritten, path)
        return preprocess(path), notes


def prepare_for_int8(model: onnx.ModelProto, seed: int = 0) -> tuple[onnx.ModelProto | None, list[str]]:
    """PREPARE_FOR_INT8 on ``model``, gated against it; None when there is nothing to prepare or the gate
    rejects it (the notes say which)."""
    passes = resolve(names=list(PREPARE_FOR_INT8))
    ctx = PassContext(opset=model_opset(model), keep_matmuls=True)
    if passes[0].candidates(gs.import_onnx(model), ctx).count == 0:
        return None, []
    gate = NumericGate(model, seed=seed)
    try:
        rewritten, report = run_passes(model, passes, ctx, gate=gate)
    finally:
        gate.close()
    spelled = sum(r.changed for r in report.records if r.name == passes[0].name and r.status == "applied")
    if report.unverified_reason or not spelled:
        why = report.unverified_reason or "; ".join(r.reason for r in report.rejected) or "nothing changed"
        return None, [f"1x1 Convs left as Convs (kept in float): {why}"]
    left = rewritten and sum(n.op_type == "Conv" for n in rewritten.graph.node)
    return rewritten, [f"{spelled} 1x1 Convs spelled as MatMuls so they quantize as DynamicQuantizeMatMul (ConvInteger is "
                       f"slower than fp32 on CPU); Transposes {report.ops_before.get('Transpose', 0)}→"
                       f"{report.ops_after.get('Transpose', 0)}; gated; {left} other Convs stay in float"]


def _source_runner(source: str | Export | None, seed: int, trust_source: bool) -> Runner | None:
    if source is None:
        return None
    # Exported, not merely loaded: keras:NAME's realistic random weights come from the exporter, seeded alike.
    if isinstance(source, Export):
        return source_runner(source)
    return source_runner(export(source, ExportOptions(seed=seed, trust_source=trust_source)))
