"""Fresh, unique tensor and node names for one pass over one graph."""

from __future__ import annotations

import onnx_graphsurgeon as gs


class Namer:
    """Fresh tensor/node names for one pass over one graph. The taken names are collected on the first
    request, from the graph as it is then (a pass that makes a Namer and names nothing walks nothing)."""

    def __init__(self, graph: gs.Graph) -> None:
        self.graph = graph
        self._taken: set[str] | None = None
        self._next_suffix: dict[str, int] = {}  # per stem, so asking for one stem n times stays linear

    def __call__(self, stem: str) -> str:
        taken = self._taken if self._taken is not None else self._collect()
        name, i = stem, self._next_suffix.get(stem, 0)
        if i:
            name = f"{stem}_{i}"
        while name in taken:
            i += 1
            name = f"{stem}_{i}"
        self._next_suffix[stem] = i + 1
        taken.add(name)
        return name

    def _collect(self) -> set[str]:
        graph, nodes = self.graph, self.graph.nodes
        taken = {t.name for t in (*graph.inputs, *graph.outputs)}  # graph.tensors()'s names, without its map
        taken.update([t.name for node in nodes for t in node.inputs])  # (one comprehension each, not an
        taken.update([t.name for node in nodes for t in node.outputs])  # update per node: a quarter faster)
        taken.discard("")  # omitted optional tensors, which graph.tensors() leaves out
        taken.update([n.name for n in nodes])
        self._taken = taken
        return taken
