"""``quantize``: pre-process, plan, quantize, gate and write the int8 artifact folder.

The steps are runtime's (:mod:`onnxmend.runtime.quantize`); this flow orders them, turns a SOURCE into
its runner when the gate should also compare with the source framework, and is what both
``onnxmend quantize`` and ``convert --quantize`` call, with the same seed, threads and provider.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Literal

from onnxmend.core import fileio
from onnxmend.core.interface import adapt_feeds
from onnxmend.core.outputs import claim_dir
from onnxmend.exporters import Export, ExportOptions, export
from onnxmend.runtime.compare import Thresholds
from onnxmend.runtime.quantize.accuracy import gate_accuracy, gate_inputs, layer_errors
from onnxmend.runtime.quantize.manifest import ArtifactContents, ArtifactPaths, write_artifacts
from onnxmend.runtime.quantize.performance import measure_latency, node_placement
from onnxmend.runtime.quantize.plan import PlanOverrides, QuantPlan, build_plan
from onnxmend.runtime.quantize.quantizer import preprocess, resolve_provider, run_quantizer
from onnxmend.runtime.runners import Runner, source_runner


@dataclass
class QuantizeResult:
    paths: ArtifactPaths
    contents: ArtifactContents
    manifest: dict[str, object]

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
) -> QuantizeResult:
    """Quantize ``model_path`` dynamically to int8 into ``out_dir``; the input file is never modified.

    ``source`` (a SOURCE string or an export already made) adds a gate against the source framework.
    ``on_plan`` sees the plan before the quantizer runs (the CLI prints it). A failing gate still writes
    every file; check ``result.passed``.
    """
    model_path, out_dir = Path(model_path), Path(out_dir)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    fp32 = fileio.load_model(model_path)
    paths = ArtifactPaths.inside(out_dir, model_path, report_name)
    written = [p.name for p in (paths.fp32, paths.int8, paths.manifest, paths.report)
               if p.resolve() != model_path.resolve()]  # the input may already be the folder's model.onnx
    claim_dir(out_dir, written, force)
    target, provider_why = resolve_provider(provider)
    reference = _source_runner(source, seed, trust_source)
    prepared = preprocess(model_path)
    plan = build_plan(prepared.model, target, overrides)
    plan.reasons["provider"] = provider_why
    if on_plan:
        on_plan(plan)
    timings["preprocess_and_plan"], clock = time.perf_counter() - clock, time.perf_counter()
    int8 = run_quantizer(prepared.model, plan)
    timings["quantize"], clock = time.perf_counter() - clock, time.perf_counter()
    inputs = gate_inputs(fp32, reference, batches, seed)
    vs_fp32, vs_source = gate_accuracy(fp32, int8, inputs, target, thresholds)
    model_feeds = adapt_feeds(inputs.feeds[0], fp32)  # the layout the fp32 graph itself takes
    layer_report = layer_errors(prepared.model, int8, model_feeds) if layers else None
    timings["gate"], clock = time.perf_counter() - clock, time.perf_counter()
    placement = node_placement(int8, target, model_feeds)
    latency = measure_latency(fp32, int8, model_feeds, provider=target, runs=latency_runs, threads=threads) \
        if latency_runs else None
    timings["placement_and_latency"] = time.perf_counter() - clock
    contents = ArtifactContents(model_path, plan, prepared.method, prepared.notes, thresholds, vs_fp32, vs_source,
                                layer_report, placement, latency, timings)
    return QuantizeResult(paths, contents, write_artifacts(paths, int8, contents))


def _source_runner(source: str | Export | None, seed: int, trust_source: bool) -> Runner | None:
    if source is None:
        return None
    # Exported, not merely loaded: keras:NAME's realistic random weights come from the exporter, seeded alike.
    if isinstance(source, Export):
        return source_runner(source)
    return source_runner(export(source, ExportOptions(seed=seed, trust_source=trust_source)))
