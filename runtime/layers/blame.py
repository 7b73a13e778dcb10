"""``validate --layers``: the first source layer whose output the ONNX graph no longer computes.

1. The source model as layers (Keras operations, torch modules from one traced pass, or the original
   ONNX file's nodes).
2. Points from node provenance. When the model is a *port* (its provenance names none of the source's
   layers, e.g. a torch port validated against its Keras original), the source's own export is fixed
   with the ``fix`` preset and aligned with the model by structure; each aligned node whose output is a
   layer's output becomes a point.
3. Both sides run on the same seeded inputs — the source in its framework, capturing layer outputs by
   name; onnxruntime with the points' tensors exposed, its inputs matched and layouts adapted — in
   chunks under a memory budget (or by bisection), compared in the source's layout.
4. The first failing point is explained: its ONNX nodes' attributes beside the source layers' config,
   and the facts that differ.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np
import onnx

from onnxmend.core.deps import require
from onnxmend.exporters.base import Export
from onnxmend.runtime.compare import DEFAULT_ATOL, DEFAULT_RTOL, Tolerance
from onnxmend.runtime.inputs import synthesize
from onnxmend.runtime.layers.align import PLUMBING, align
from onnxmend.runtime.layers.explain import Explainer
from onnxmend.runtime.layers.graph import SourceGraph
from onnxmend.runtime.layers.layout import input_perms, tensor_info, tensor_perms
from onnxmend.runtime.layers.mapping import LayerMap, LayerPoint, map_by_provenance
from onnxmend.runtime.layers.onnx_graph import map_by_tensor_names, onnx_graph
from onnxmend.runtime.layers.probe import DEFAULT_BUDGET, Probe, Strategy, run_probes
from onnxmend.runtime.layers.report import LayerReport, attach_details
from onnxmend.runtime.runners import onnx_runner, source_runner
from onnxmend.runtime.runners.matching import for_source, interface_match

PORT_COVERAGE = 0.5  # below this share of weighted layers named by provenance, the model is a port
Fixer = Callable[[onnx.ModelProto], onnx.ModelProto]


@dataclass(frozen=True)
class BlameOptions:
    seed: int = 0
    atol: float = DEFAULT_ATOL
    rtol: float = DEFAULT_RTOL
    budget: int = DEFAULT_BUDGET
    strategy: Strategy = "chunks"


def blame_layers(model: onnx.ModelProto, export: Export, options: BlameOptions = BlameOptions(),
                 fixer: Fixer | None = None) -> LayerReport:
    """Per-layer parity of ``model`` against ``export``'s source model; ``fixer`` normalizes the source's
    own export when ``model`` turns out to be a port (the flow hands in the fix preset)."""
    return LayerBlame(model, export, options, fixer).run()


class LayerBlame:
    """Everything a per-layer comparison prepares once — the source as layers, the points, both runners,
    the probes — and :meth:`run`, which captures, compares and explains (a benchmark runs it again warm)."""

    def __init__(self, model: onnx.ModelProto, export: Export, options: BlameOptions = BlameOptions(),
                 fixer: Fixer | None = None) -> None:
        self.model, self.export, self.options, self.fixer = model, export, options, fixer
        self.feeds = synthesize(export.inputs, seed=options.seed)
        self.runner = source_runner(export)
        self.graph = source_graph(export, self.feeds)
        self.layer_map, self.reference = _map(model, export, self.graph, fixer)
        plain = onnx_runner(model, provider="cpu", opt_level="disable")
        self.candidate = for_source(plain, model, export)
        matched = {b.model: b.perm for b in interface_match(model, plain, export).inputs}
        self.info = tensor_info(model)
        self.perms = tensor_perms(model, input_perms(model, matched), self.info)
        self.probes = [Probe(p.label, p.answer, p.tensor, None, self.perms.get(p.tensor),
                             2 * self.info.get(p.tensor, (0, 0))[1]) for p in self.layer_map.points]

    def run(self) -> LayerReport:
        tolerance = Tolerance(self.options.atol, self.options.rtol)
        run = run_probes(self.probes, lambda keys: self.runner.capture(self.feeds, keys),
                         lambda keys: self.candidate.capture(self.feeds, keys), tolerance, self.options.budget,
                         self.options.strategy)
        report = LayerReport("validate", self.export.source, self.graph.framework, self.layer_map, run, tolerance)
        attach_details(report, Explainer(self.graph, self.model, self.perms, self.reference, self.info))
        if report.detail is not None and self.reference is None and self.fixer is not None \
                and self.graph.framework != "onnx":
            _weights_against_export(report, self.graph, self.model, self.perms, self.fixer(self.export.model))
        return report


def _weights_against_export(report: LayerReport, graph: SourceGraph, model: onnx.ModelProto,
                            perms: dict, reference: onnx.ModelProto) -> None:
    """For a model exported from this source: the failing point's weights beside those of a fresh export
    of the source (fixed the same way), so an edited or corrupted weight shows as a weight difference."""
    first = report.first_failure
    point = next(p for p in report.layer_map.points if p.label == first.probe.label)  # type: ignore[union-attr]
    peer = next((p for p in map_by_provenance(reference, graph).points if p.answer == point.answer), None)
    if peer is not None:
        report.detail = Explainer(graph, model, perms, reference).detail(replace(point, peers=peer.nodes), first)  # type: ignore[arg-type]


def source_graph(export: Export, feeds: dict[str, np.ndarray]) -> SourceGraph:
    source = export.source_model
    if source is None or source.kind == "onnx-bytes":
        return onnx_graph(onnx.load_from_string(source.model) if source else export.model)
    if source.kind == "torch-module":
        from onnxmend.runtime.layers.torch_graph import torch_graph

        torch = require("torch")
        tensors = [torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in source.input_names]
        return torch_graph(source.model, tensors)
    from onnxmend.runtime.layers.keras_graph import keras_graph

    return keras_graph(source.model)


def _map(model: onnx.ModelProto, export: Export, graph: SourceGraph,
         fixer: Fixer | None) -> tuple[LayerMap, onnx.ModelProto | None]:
    if graph.framework == "onnx":
        return map_by_tensor_names(model, graph), None
    direct = map_by_provenance(model, graph)
    if direct.coverage >= PORT_COVERAGE and direct.points:
        return direct, None
    reference = fixer(export.model) if fixer else export.model
    ported = map_by_alignment(model, reference, graph)
    ported.notes.insert(0,
        f"provenance names {direct.mapped_weighted}/{direct.weighted} weighted layers of {export.source}: "
        f"treated as a port, aligned by structure with the source's own export"
    )
    return ported, reference


def _through_plumbing(model: onnx.ModelProto, tensor: str) -> str:
    """The tensor a layout/shape op chain (a fused norm's closing Transpose) reads ``tensor`` from."""
    makers = {o: n for n in model.graph.node for o in n.output}
    seen = set()
    while tensor in makers and makers[tensor].op_type in PLUMBING and makers[tensor].input and tensor not in seen:
        seen.add(tensor)
        tensor = makers[tensor].input[0]
    return tensor


def map_by_alignment(model: onnx.ModelProto, reference: onnx.ModelProto, graph: SourceGraph) -> LayerMap:
    """Points of ``model`` through the source's own export ``reference``: an aligned node whose peer's
    output is a layer's point answers for that layer."""
    own = map_by_provenance(reference, graph)
    by_tensor = {_through_plumbing(reference, p.tensor): p for p in own.points}
    alignment = align(reference, model)
    points = []
    for ref_token, token in alignment.pairs:
        peer = by_tensor.get(ref_token.output)
        if peer is not None:
            points.append(LayerPoint(peer.layers, token.output, (token.node,), "alignment", (ref_token.node,)))
    covered = {n for p in points for n in p.layers}
    unmapped = [layer.name for layer in graph.layers if layer.has_weights and layer.name not in covered]
    result = LayerMap(points, unmapped, [n for n in own.no_nodes if n not in covered], own.weighted)
    result.notes.append(f"{len(alignment.unaligned_b)} op(s) of the model and {len(alignment.unaligned_a)} "
                        "of the source's export did not align")
    return result
