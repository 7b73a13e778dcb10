"""Fresh, unique tensor and node names for one pass over one graph."""

from __future__ import annotations

import onnx_graphsurgeon as gs


class Namer:
    """Fresh tensor/node names for one pass over one graph (collects the taken names once)."""

    def __init__(self, graph: gs.Graph) -> None:
        taken = {t.name for t in (*graph.inputs, *graph.outputs)}  # graph.tensors()'s names, without its map
        for node in graph.nodes:
            taken.update(t.name for t in node.inputs)
            taken.update(t.name for t in node.outputs)
        taken.discard("")  # omitted optional tensors, which graph.tensors() leaves out
        taken.update(n.name for n in graph.nodes)
        self.taken = taken
        self._next_suffix: dict[str, int] = {}  # per stem, so asking for one stem n times stays linear

    def __call__(self, stem: str) -> str:
        name, i = stem, self._next_suffix.get(stem, 0)
        if i:
            name = f"{stem}_{i}"
        while name in self.taken:
            i += 1
            name = f"{stem}_{i}"
        self._next_suffix[stem] = i + 1
        self.taken.add(name)
        return name
