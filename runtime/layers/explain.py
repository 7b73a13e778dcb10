"""Why the first failing point fails: its ONNX nodes' attributes beside the source layers' config.

A :class:`LayerDetail` lists, for the first point whose error exceeds the tolerance, the source layers it
answers for with their facts (Keras/torch config), the ONNX nodes with theirs (attributes, and what a
rewrite absorbed into them), the peers in the source's own export when the model was aligned as a port,
and ``differs``: the facts both sides state and disagree on, source side first (``epsilon 0.001 vs
1e-05``, ``pads [0, 0, 1, 1] vs [1, 1, 1, 1]``). With a peer, the weights are compared too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import onnx

from onnxmend.runtime.layers.facts import NodeFacts, fact_diff, merged
from onnxmend.runtime.layers.graph import CHANNELS_FIRST, SourceGraph
from onnxmend.runtime.layers.layout import Perm, input_perms, letters_for, tensor_info, tensor_perms
from onnxmend.runtime.layers.mapping import LayerPoint, node_provenance
from onnxmend.runtime.layers.probe import ProbeResult
from onnxmend.runtime.layers.weights import WeightVerdict, compare_weights


@dataclass
class LayerDetail:
    label: str
    result: ProbeResult
    source: list[dict] = field(default_factory=list)  # [{"name", "kind", "facts"}]
    onnx: list[dict] = field(default_factory=list)  # [{"name", "op", "facts"}]
    peers: list[dict] = field(default_factory=list)
    other_source: list[dict] = field(default_factory=list)  # diff: side B's source layers
    differs: dict[str, tuple[object, object]] = field(default_factory=dict)
    weights: WeightVerdict | None = None
    # how the report calls: source layers, peers, ONNX nodes, other_source
    sides: tuple[str, str, str, str] = ("source", "source's export", "ONNX", "")

    def to_json(self) -> dict[str, object]:
        return {
            "label": self.label, "result": self.result.to_json(), "source": self.source, "onnx": self.onnx,
            "peers": self.peers, "other_source": self.other_source, "differs": {k: list(v) for k, v in self.differs.items()},
            "weights": self.weights.to_json() if self.weights else None, "sides": list(self.sides),
        }


class Explainer:
    """Facts of the points of one model: built once, asked per point."""

    def __init__(self, graph: SourceGraph, model: onnx.ModelProto, perms: Mapping[str, Perm],
                 reference: onnx.ModelProto | None = None, info: Mapping[str, tuple[int, int]] | None = None) -> None:
        self.graph, self.model, self.perms, self.reference = graph, model, perms, reference
        self.facts = NodeFacts(model, [absorbed for _, absorbed in node_provenance(model)])
        self.ranks = {k: v[0] for k, v in (info if info is not None else tensor_info(model)).items()}
        self.reference_facts = None if reference is None else NodeFacts(
            reference, [absorbed for _, absorbed in node_provenance(reference)])
        self.reference_perms = {} if reference is None else tensor_perms(reference, input_perms(reference))
        self.reference_ranks = {} if reference is None else {k: v[0] for k, v in tensor_info(reference).items()}

    def detail(self, point: LayerPoint, result: ProbeResult) -> LayerDetail:
        detail = LayerDetail(point.label, result)
        for name in point.layers:
            layer = self.graph.get(name)
            if layer is not None:
                detail.source.append({"name": name, "kind": layer.kind, "facts": layer.facts})
        detail.onnx = describe_nodes(self.facts, point.nodes, self.perms, self.graph, self.ranks)
        onnx_facts = merged([n["facts"] for n in detail.onnx])
        detail.differs = fact_diff(merged([s["facts"] for s in detail.source]), onnx_facts)
        if self.reference_facts is not None and point.peers:
            detail.peers = describe_nodes(self.reference_facts, point.peers, self.reference_perms, self.graph,
                                          self.reference_ranks)
            for key, values in fact_diff(merged([p["facts"] for p in detail.peers]), onnx_facts).items():
                detail.differs.setdefault(key, values)
            theirs = self.reference_facts.weight(weighted(self.reference_facts, point.peers))
            ours = self.facts.weight(weighted(self.facts, point.nodes))
            detail.weights = None if theirs is None and ours is None else compare_weights(theirs, ours)
        return detail


def weighted(facts: NodeFacts, names: Sequence[str]) -> str:
    """The first of ``names`` that has a constant weight (a point may start with a Transpose)."""
    return next((n for n in names if facts.weight(n) is not None), names[0] if names else "")


def is_cause(detail: LayerDetail) -> bool:
    """A difference that changes inference numbers (momentum only matters in training)."""
    return any(k != "momentum" for k in detail.differs) or (detail.weights is not None and not detail.weights.equal)


def describe_nodes(facts: NodeFacts, names: Sequence[str], perms: Mapping[str, Perm],
                   graph: SourceGraph | None, ranks: Mapping[str, int] | None = None) -> list[dict]:
    """``[{"name", "op", "facts"}]`` for the nodes called ``names`` (``ranks``: of their input tensors)."""
    found = []
    for name in names:
        node = facts.nodes.get(name)
        if node is None:
            continue
        data_input = node.input[0] if node.input else ""
        perm = perms.get(data_input)
        rank = len(perm) if perm is not None else (ranks or {}).get(data_input, 4)
        letters = letters_for(perm, graph.letters(rank) if graph else "", rank, CHANNELS_FIRST.get(rank, ""))
        found.append({"name": name, "op": node.op_type, "facts": facts.of(name, letters)})
    return found
