"""``diff``: two ports of one model, aligned by structure, run on the same input, the first divergence named.

Both graphs come normalized (``fix`` preset, NCHW interface) from the flow. They are aligned
(:mod:`~onnxmend.runtime.layers.align`), side A's inputs are synthesized from its seed and fed to B
through the interface match (by name, else position; layouts adapted), every aligned pair's outputs are
captured in memory-bounded chunks and compared in A's source layout. The first pair over tolerance is
explained with both sides' ONNX attributes and, when the sources could be read as layers, both sides'
source configs (so a BatchNorm epsilon folded into a Conv is still visible), and whether the *weights*
are equal after the layout permutation — a kernel transposed wrong is a weight difference.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import onnx

from onnxmend.core.errors import OnnxmendError
from onnxmend.core.interface import source_layout_specs
from onnxmend.runtime.compare import Tolerance
from onnxmend.runtime.layers.align import Alignment, Token, align
from onnxmend.runtime.layers.explain import LayerDetail, describe_nodes
from onnxmend.runtime.layers.facts import NodeFacts, fact_diff, merged
from onnxmend.runtime.layers.graph import SourceGraph
from onnxmend.runtime.layers.layout import Perm, input_perms, tensor_info, tensor_perms
from onnxmend.runtime.layers.mapping import LayerMap, LayerPoint, node_provenance, resolved_layers
from onnxmend.runtime.layers.probe import Probe, run_probes
from onnxmend.runtime.layers.report import LayerReport, attach_details
from onnxmend.runtime.layers.weights import compare_weights
from onnxmend.runtime.runners import onnx_runner
from onnxmend.runtime.runners.matching import match_inputs


@dataclass
class Side:
    """One port: its normalized graph, the source it came from, and its source as layers (if readable)."""

    label: str  # the SOURCE string
    model: onnx.ModelProto
    graph: SourceGraph | None = None
    nchw: bool = False  # its producer takes channels first (torch)

    def layers_by_node(self) -> dict[str, list[str]]:
        if self.graph is None:
            return {}
        return {(n.name or n.output[0]): layers
                for n, layers in zip(self.model.graph.node, resolved_layers(self.model, self.graph))}


def _check_input_dtypes(a: Side, b: Side, specs_a, specs_b) -> None:
    """One sentence when the two ports take inputs of different element types (a float model and a
    full-int8 .tflite with int8 I/O): the same input cannot be fed to both."""
    for x, y in zip(specs_a, specs_b):
        if np.dtype(x.dtype) != np.dtype(y.dtype):
            raise OnnxmendError(f"{a.label} takes {x.name} as {np.dtype(x.dtype).name} and {b.label} takes {y.name} as "
                                f"{np.dtype(y.dtype).name}: the two cannot be run on the same input (an int8-I/O model is "
                                "validated against its own .tflite source, in quantization steps).")


def diff_models(a: Side, b: Side, feeds: Mapping[str, np.ndarray], tolerance: Tolerance, budget: int,
                strategy: str = "chunks") -> LayerReport:
    """Compare every aligned pair of ``a`` and ``b`` on ``feeds`` (in A's source layout)."""
    alignment = align(a.model, b.model)
    runner_a = onnx_runner(a.model, provider="cpu", opt_level="disable")
    runner_b = onnx_runner(b.model, provider="cpu", opt_level="disable")
    match = match_inputs(source_layout_specs(a.model), runner_b.inputs, nchw_model=b.nchw)
    _check_input_dtypes(a, b, source_layout_specs(a.model), runner_b.inputs)
    info_a, info_b = tensor_info(a.model), tensor_info(b.model)
    perms_a = tensor_perms(a.model, input_perms(a.model), info_a)
    perms_b = tensor_perms(b.model, input_perms(b.model, {x.model: x.perm for x in match.inputs}), info_b)
    names_a, names_b = a.layers_by_node(), b.layers_by_node()
    points, probes, used = [], [], set()
    for ta, tb in alignment.pairs:
        label = _label(ta, tb, names_a, names_b, used)
        points.append(LayerPoint((label,), tb.output, (tb.node,), "alignment", (ta.node,)))
        probes.append(Probe(label, ta.output, tb.output, perms_a.get(ta.output), perms_b.get(tb.output),
                            info_a.get(ta.output, (0, 0))[1] + info_b.get(tb.output, (0, 0))[1]))
    _output_probes(a.model, b.model, points, probes, info_a, info_b, perms_a, perms_b)
    run = run_probes(probes, lambda keys: runner_a.capture(feeds, keys),
                     lambda keys: runner_b.capture(match.adapt(feeds), keys), tolerance, budget, strategy)  # type: ignore[arg-type]
    layer_map = _alignment_map(points, alignment)
    report = LayerReport("diff", f"{a.label} vs {b.label}", "onnx", layer_map, run, tolerance)
    explainer = DiffExplainer(a, b, perms_a, perms_b, names_a, names_b, (info_a, info_b))
    report.extra["alignment"] = alignment.to_json()
    report.extra["weights"] = explainer.weight_column(alignment)
    report.extra["inputs"] = match.describe()
    attach_details(report, explainer)
    return report


class DiffExplainer:
    def __init__(self, a: Side, b: Side, perms_a: Mapping[str, Perm], perms_b: Mapping[str, Perm],
                 names_a: Mapping[str, list[str]], names_b: Mapping[str, list[str]],
                 infos: tuple[Mapping[str, tuple[int, int]], Mapping[str, tuple[int, int]]]) -> None:
        self.a, self.b = a, b
        self.facts_a = NodeFacts(a.model, [x for _, x in node_provenance(a.model)])
        self.facts_b = NodeFacts(b.model, [x for _, x in node_provenance(b.model)])
        self.perms_a, self.perms_b, self.names_a, self.names_b = perms_a, perms_b, names_a, names_b
        self.ranks_a, self.ranks_b = ({k: v[0] for k, v in info.items()} for info in infos)

    def detail(self, point: LayerPoint, result) -> LayerDetail:  # noqa: ANN001 - a ProbeResult
        detail = LayerDetail(point.label, result, sides=(f"A {self.a.label}", "A ONNX", "B ONNX", f"B {self.b.label}"))
        node_a, node_b = point.peers[0], point.nodes[0]
        detail.source = _source_layers(self.a.graph, self.names_a.get(node_a, []))
        detail.other_source = _source_layers(self.b.graph, self.names_b.get(node_b, []))
        detail.peers = describe_nodes(self.facts_a, [node_a], self.perms_a, self.a.graph, self.ranks_a)
        detail.onnx = describe_nodes(self.facts_b, [node_b], self.perms_b, self.a.graph, self.ranks_b)
        if detail.source and detail.other_source:
            detail.differs = fact_diff(merged([s["facts"] for s in detail.source]),
                                       merged([s["facts"] for s in detail.other_source]))
        for key, values in fact_diff(merged([n["facts"] for n in detail.peers]), merged([n["facts"] for n in detail.onnx])).items():
            detail.differs.setdefault(key, values)
        if self.facts_a.weight(node_a) is not None or self.facts_b.weight(node_b) is not None:
            detail.weights = compare_weights(self.facts_a.weight(node_a), self.facts_b.weight(node_b))
        return detail

    def weight_column(self, alignment: Alignment) -> dict[str, str]:
        """Per aligned weighted pair (A node name): whether the weights are equal after the layout change."""
        return {ta.node: compare_weights(self.facts_a.weight(ta.node), self.facts_b.weight(tb.node)).summary
                for ta, tb in alignment.pairs if ta.weighted}


def _output_probes(a: onnx.ModelProto, b: onnx.ModelProto, points: list[LayerPoint], probes: list[Probe],
                   info_a: Mapping, info_b: Mapping, perms_a: Mapping, perms_b: Mapping) -> None:
    """The graph outputs, paired by position, unless an aligned pair already compares them: a diff never
    passes two models whose outputs differ."""
    makers_a = {o: n.name or n.output[0] for n in a.graph.node for o in n.output}
    makers_b = {o: n.name or n.output[0] for n in b.graph.node for o in n.output}
    seen = {p.ref_key for p in probes}
    for out_a, out_b in zip(a.graph.output, b.graph.output):
        if out_a.name in seen:
            continue
        label = f"output {out_a.name} ↔ {out_b.name}"
        points.append(LayerPoint((label,), out_b.name, (makers_b.get(out_b.name, out_b.name),), "output",
                                 (makers_a.get(out_a.name, out_a.name),)))
        probes.append(Probe(label, out_a.name, out_b.name, perms_a.get(out_a.name), perms_b.get(out_b.name),
                            info_a.get(out_a.name, (0, 0))[1] + info_b.get(out_b.name, (0, 0))[1]))


def _label(ta: Token, tb: Token, names_a: Mapping[str, list[str]], names_b: Mapping[str, list[str]],
           used: set[str]) -> str:
    """``A layer ↔ B layer (op)``, unique (a decomposed norm has several aligned ops in one layer)."""
    left = (names_a.get(ta.node) or [ta.node])[-1]
    right = (names_b.get(tb.node) or [tb.node])[-1]
    label = f"{left} ↔ {right}" + ("" if ta.weighted else f" ({ta.key[0]})")
    k = 2
    while label in used:
        label = f"{left} ↔ {right} ({ta.key[0]} {k})"
        k += 1
    used.add(label)
    return label


def _source_layers(graph: SourceGraph | None, names: list[str]) -> list[dict]:
    if graph is None:
        return []
    return [{"name": n, "kind": graph.get(n).kind, "facts": graph.get(n).facts} for n in names if graph.get(n)]  # type: ignore[union-attr]


def _alignment_map(points: list[LayerPoint], alignment: Alignment) -> LayerMap:
    unaligned = [f"A {t.node} ({t.text})" for t in alignment.unaligned_a if t.weighted]
    unaligned += [f"B {t.node} ({t.text})" for t in alignment.unaligned_b if t.weighted]
    layer_map = LayerMap(points, unaligned, [], alignment.weighted_a + alignment.weighted_b)
    layer_map.notes.append(
        f"aligned {len(alignment.pairs)} op pair(s); weighted ops aligned: A {alignment.coverage_a:.0%}, "
        f"B {alignment.coverage_b:.0%}; not aligned: {len(alignment.unaligned_a)} op(s) of A, "
        f"{len(alignment.unaligned_b)} of B")
    return layer_map
