"""Linear-time dead-node sweep and topological sort for onnx-graphsurgeon graphs.

graphsurgeon's own ``cleanup`` and ``toposort`` walk every tensor and every subgraph level on each call
(1.3 s and 2.4 s on a 98,000-node graph here), which a pipeline cannot afford after every pass. These do
the same job in one pass over nodes and their tensors: :func:`sweep` drops the nodes no graph output
depends on, disconnecting them as graphsurgeon does; :func:`toposort` orders nodes producers first,
keeping the existing order wherever it is already valid. Tensors that a node's subgraphs (If/Loop/Scan
bodies) read from the outer scope count as that node's inputs in both.
"""

from __future__ import annotations

import heapq

import onnx_graphsurgeon as gs


def sweep(graph: gs.Graph) -> int:
    """Remove nodes that no graph output depends on; returns how many were removed. Graph inputs stay."""
    for tensor in graph.inputs:
        tensor.inputs.clear()  # a graph input has no producer inside the graph
    live: set[int] = set()
    stack: list[gs.Tensor] = list(graph.outputs)
    seen: set[int] = set()
    while stack:
        tensor = stack.pop()
        if id(tensor) in seen:
            continue
        seen.add(id(tensor))
        for node in tensor.inputs:
            if id(node) not in live:
                live.add(id(node))
                stack.extend(node.inputs)
                stack.extend(outer_inputs(node))
    kept, removed = [], 0
    for node in graph.nodes:
        if id(node) in live:
            kept.append(node)
        else:
            node.inputs.clear()
            node.outputs.clear()
            removed += 1
    graph.nodes = kept
    return removed


def toposort(graph: gs.Graph) -> None:
    """Order ``graph.nodes`` so every node comes after the producers of what it reads (stable)."""
    nodes = graph.nodes
    position = {id(n): i for i, n in enumerate(nodes)}
    waiting = [0] * len(nodes)
    readers: list[list[int]] = [[] for _ in nodes]
    for i, node in enumerate(nodes):
        producers = {position[id(p)] for t in (*node.inputs, *outer_inputs(node)) for p in t.inputs if id(p) in position}
        producers.discard(i)
        waiting[i] = len(producers)
        for p in producers:
            readers[p].append(i)
    ready = [i for i, count in enumerate(waiting) if count == 0]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        i = heapq.heappop(ready)
        order.append(i)
        for r in readers[i]:
            waiting[r] -= 1
            if waiting[r] == 0:
                heapq.heappush(ready, r)
    if len(order) != len(nodes):
        raise ValueError("the graph has a cycle; it cannot be sorted")
    graph.nodes = [nodes[i] for i in order]


def outer_inputs(node: gs.Node) -> list[gs.Tensor]:
    """Tensors a node's subgraphs read from the enclosing graph (empty for nodes without subgraphs)."""
    graphs = [v for v in node.attrs.values() if isinstance(v, gs.Graph)]
    if not graphs:
        return []
    found: list[gs.Tensor] = []
    for sub in graphs:
        local = {id(t) for t in sub.inputs} | {id(t) for n in sub.nodes for t in n.outputs}
        for inner in sub.nodes:
            for tensor in (*inner.inputs, *outer_inputs(inner)):
                if id(tensor) not in local and not isinstance(tensor, gs.Constant) and tensor.name:
                    found.append(tensor)
    return found


def op_counts(graph: gs.Graph) -> dict[str, int]:
    """Op histogram of the graph's nodes (the top level, as ``core.graph.op_histogram`` counts a model)."""
    counts: dict[str, int] = {}
    for node in graph.nodes:
        counts[node.op] = counts.get(node.op, 0) + 1
    return counts
