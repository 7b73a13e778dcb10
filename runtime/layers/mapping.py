"""Which ONNX tensor answers for each source layer, from node provenance.

Every node's hints (:mod:`onnxmend.core.provenance`) are matched to the source's layer names: exactly
(torch module paths), else scope by scope from the left, after the model's own scope, with TensorFlow's
``_1`` tracing suffix dropped (``mobilenetv2_1.00_224_1/block_1_expand_BN_1/batchnorm`` →
``block_1_expand_BN``). A node *answers* for
the latest of its layers in network order: a Conv that folded its BatchNorm answers for the BN, and the
Conv layer is *fused* into that point — the Conv's own output no longer exists in the graph. The same
holds for a layer only part of which was merged into a later layer's node (a Normalization whose scale
was folded into the next Conv): its remaining nodes no longer end in its output, so it has no point of its
own. A layer's
tensor is the output of its last node that leaves the layer (read by another layer's node, or a graph
output).

A BatchNorm that no node names, reading only from a mapped convolution that only it reads, was folded
away by the exporter (the TorchScript exporter folds BatchNorm into Conv and drops its name): it joins
that point, marked ``inferred``. Every other layer with weights and no point is listed as
unmapped, never dropped; coverage is mapped/total layers with weights.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

import onnx

from onnxmend.core.provenance import (
    OP_PREFIX,
    exporter_absorbed,
    exporter_hints,
    recorded_absorbed,
    recorded_hints,
    single_use_initializers,
)
from onnxmend.runtime.layers.graph import SourceGraph

_TRACE_SUFFIX = re.compile(r"_\d+$")


@dataclass(frozen=True)
class LayerPoint:
    """One comparison point: the source layers it answers for (network order; the last is compared)."""

    layers: tuple[str, ...]
    tensor: str  # the ONNX tensor holding the last layer's output
    nodes: tuple[str, ...]  # the ONNX nodes answering for these layers
    via: str = "provenance"  # "provenance", "inferred" or "alignment"
    peers: tuple[str, ...] = ()  # with alignment: the nodes of the source's own export it was aligned with

    @property
    def answer(self) -> str:
        return self.layers[-1]

    @property
    def label(self) -> str:
        return self.answer if len(self.layers) == 1 else f"{self.answer} (+{', '.join(self.layers[:-1])})"

    def to_json(self) -> dict[str, object]:
        return {"layers": list(self.layers), "tensor": self.tensor, "nodes": list(self.nodes), "via": self.via,
                "peers": list(self.peers)}


@dataclass
class LayerMap:
    points: list[LayerPoint]
    unmapped: list[str]  # layers with weights that answer nowhere
    no_nodes: list[str]  # leaf layers without weights and without ONNX nodes (identity at inference?)
    weighted: int  # layers with weights in the source
    notes: list[str] = field(default_factory=list)

    @property
    def mapped_weighted(self) -> int:
        return self.weighted - len(self.unmapped)

    @property
    def coverage(self) -> float:
        return self.mapped_weighted / self.weighted if self.weighted else 1.0

    def to_json(self) -> dict[str, object]:
        return {"points": [p.to_json() for p in self.points], "unmapped": self.unmapped, "no_nodes": self.no_nodes,
                "weighted_layers": self.weighted, "mapped_weighted_layers": self.mapped_weighted,
                "coverage": round(self.coverage, 4), "notes": self.notes}


class Resolver:
    """Hints → layer names of one source graph."""

    def __init__(self, graph: SourceGraph) -> None:
        self.graph = graph
        self._cache: dict[str, str | None] = {}

    def __call__(self, hint: str) -> str | None:
        if hint not in self._cache:
            self._cache[hint] = self._resolve(hint)
        return self._cache[hint]

    def _resolve(self, hint: str) -> str | None:
        if hint in self.graph:
            return hint
        # a TensorFlow scope starts with the model's own scope, which may share a layer's name
        for segment in hint.split("/")[1:] if "/" in hint else ():
            if segment.startswith(OP_PREFIX):  # a keras.ops call, named like its op: no tracing suffix
                return segment[len(OP_PREFIX):] if segment[len(OP_PREFIX):] in self.graph else None
            stripped = _TRACE_SUFFIX.sub("", segment)
            for candidate in (stripped, segment):
                if candidate in self.graph:
                    return candidate
        return None


def node_provenance(model: onnx.ModelProto) -> list[tuple[list[str], list[dict]]]:
    """Per node (graph order): its hints and absorbed records, recorded by onnxmend or left by the exporter."""
    weights = single_use_initializers(model)
    result = []
    for node in model.graph.node:
        hints = recorded_hints(node)
        result.append((hints if hints is not None else exporter_hints(node, weights),
                       recorded_absorbed(node) or exporter_absorbed(node)))
    return result


def resolved_layers(model: onnx.ModelProto, graph: SourceGraph) -> list[list[str]]:
    """Per node (graph order): the source layers its hints name, in network order. A keras.ops call's name
    counts only on a node no layer names (a rewrite may leave a residual ``add``'s hint on a Conv)."""
    resolve = Resolver(graph)
    found = []
    for hints, _ in node_provenance(model):
        layers = {resolve(h) for h in hints if OP_PREFIX not in h} - {None}
        layers = layers or {resolve(h) for h in hints if OP_PREFIX in h} - {None}
        found.append(sorted(layers, key=lambda n: graph.get(n).index))  # type: ignore[union-attr]
    return found


def map_by_provenance(model: onnx.ModelProto, graph: SourceGraph) -> LayerMap:
    """The comparison points of ``model`` for ``graph``'s layers, in network order."""
    nodes = list(model.graph.node)
    layers_of = resolved_layers(model, graph)
    answer = {i: names[-1] for i, names in enumerate(layers_of) if names}
    readers: dict[str, list[int]] = {}
    for i, node in enumerate(nodes):
        for name in node.input:
            readers.setdefault(name, []).append(i)
    outputs = {o.name for o in model.graph.output}
    groups: dict[str, list[int]] = {}
    for i, layer in answer.items():
        groups.setdefault(layer, []).append(i)
    # a layer named on a node that answers for a later layer had (part of) itself merged there: its own
    # output no longer exists, so it has no point of its own and joins that later one
    absorbed = {n for names in layers_of for n in names[:-1]}
    own = set(groups) - absorbed
    points = []
    for layer in sorted(own, key=lambda n: graph.get(n).index):  # type: ignore[union-attr]
        members = groups[layer]
        leaving = [(i, t) for i in members for t in nodes[i].output
                   if t and (t in outputs or any(answer.get(r) != layer for r in readers.get(t, [])))]
        if not leaving:
            continue
        fused = {n for i in members for n in layers_of[i] if n not in own}
        names = tuple(sorted(fused | {layer}, key=lambda n: graph.get(n).index))  # type: ignore[union-attr]
        points.append(LayerPoint(names, max(leaving)[1], tuple(nodes[i].name or nodes[i].op_type for i in members)))
    return _finish(points, graph)


def _finish(points: list[LayerPoint], graph: SourceGraph) -> LayerMap:
    points = _infer_folded(points, graph)
    covered = {n for p in points for n in p.layers}
    unmapped = [layer.name for layer in graph.layers if layer.has_weights and layer.name not in covered]
    no_nodes = [layer.name for layer in graph.layers
                if not layer.has_weights and not layer.container and layer.name not in covered]
    weighted = sum(1 for layer in graph.layers if layer.has_weights)
    return LayerMap(points, unmapped, no_nodes, weighted)


def _infer_folded(points: list[LayerPoint], graph: SourceGraph) -> list[LayerPoint]:
    """Extend a point by the weighted layer right after it that an exporter folded in without a name."""
    covered = {n for p in points for n in p.layers}
    by_answer = {p.answer: k for k, p in enumerate(points)}
    readers = graph.consumers()
    for layer in graph.layers:
        if not layer.kind.startswith("BatchNorm") or layer.name in covered or len(layer.inputs) != 1:
            continue
        source = layer.inputs[0]
        k = by_answer.get(source)
        if k is None or "Conv" not in graph.get(source).kind:  # type: ignore[union-attr]
            continue
        if k is None or [r for r in readers.get(source, []) if not _is_container(graph, r)] != [layer.name]:
            continue
        points[k] = replace(points[k], layers=points[k].layers + (layer.name,), via="inferred")
        by_answer[layer.name] = k
        covered.add(layer.name)
    return sorted(points, key=lambda p: graph.get(p.answer).index)  # type: ignore[union-attr]


def _is_container(graph: SourceGraph, name: str) -> bool:
    layer = graph.get(name)
    return layer is not None and layer.container
