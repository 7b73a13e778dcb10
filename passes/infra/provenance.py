"""Provenance through rewrites: every node a pass creates answers for the source layers of what it replaced.

onnx-graphsurgeon drops node metadata, so the hints (:mod:`onnxmend.core.provenance`) ride on the
imported nodes as Python attributes: :func:`import_graph` seeds them from the model (recorded hints, else
what the exporter left), and :func:`stamp` writes them back into the exported model's ``metadata_props``.

In between, two rules keep them, so no pass module has to:

- :func:`rewriting` wraps one :class:`~onnxmend.passes.infra.base.MatchingPass` rewrite. The nodes of the
  match (every ``gs.Node`` its dataclass holds, nested ones too) pool their hints; the nodes the rewrite
  appends and the matched nodes it rewrote (new attributes, new outputs, a new constant input) receive
  the pool — a node the match only looked at keeps its own — and the attributes of matched nodes that
  die (epsilon, momentum, axes, pads, …) are kept as *absorbed* records on the receivers. So a fused
  LayerNormalization answers for its Keras layer and a Conv with a folded BN for the Conv+BN pair.
- :func:`stamp` gives a node that has no hints (one made by a sweep pass such as push-transposes) the
  hints of the node that wrote the same output tensor before the pass.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
from typing import Any, Iterator

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from onnxmend.core.graph import const_value
from onnxmend.core.graph import import_graph as core_import_graph
from onnxmend.core.provenance import (
    ABSORBED_KEY,
    PROVENANCE_KEY,
    exporter_absorbed,
    exporter_hints,
    recorded_absorbed,
    recorded_hints,
    single_use_initializers,
    write_list,
)

log = logging.getLogger(__name__)

_HINTS = "_onnxmend_hints"
_ABSORBED = "_onnxmend_absorbed"
_PRODUCERS = "_onnxmend_producers"  # on the graph: output tensor name -> hints, as imported
# Attributes worth keeping when their node is folded away: what a user compares with the source's config.
SALIENT = ("epsilon", "momentum", "axis", "axes", "pads", "strides", "dilations", "group", "num_groups",
           "kernel_shape", "auto_pad", "alpha", "beta", "min", "max", "perm", "mode", "approximate")


def hints(node: gs.Node) -> tuple[str, ...]:
    return getattr(node, _HINTS, ())


def absorbed(node: gs.Node) -> tuple[dict, ...]:
    return getattr(node, _ABSORBED, ())


def set_hints(node: gs.Node, values: tuple[str, ...] | list[str], taken: tuple[dict, ...] = ()) -> None:
    setattr(node, _HINTS, tuple(dict.fromkeys(values)))
    if taken:
        setattr(node, _ABSORBED, tuple(taken))


def forget(node: gs.Node) -> None:
    """``node`` is reused for a new job (push-transposes moves a Transpose below the op it fed): it answers
    for what a node made there would, nothing of its own (:func:`stamp` gives it its output's writer's)."""
    for key in (_HINTS, _ABSORBED):
        node.__dict__.pop(key, None)


def import_graph(model: onnx.ModelProto, seeds: Seeds | None = None) -> gs.Graph:
    """:func:`onnxmend.core.graph.import_graph` (one sentence for a graph graphsurgeon cannot read) with every
    node's hints and absorbed records attached: ``seeds`` when they were read from ``model``'s nodes before
    (:func:`read_seeds`; the manager reads them while the graph worker infers the shapes), else read now."""
    graph = core_import_graph(model)
    attach_seeds(graph, seeds if seeds is not None else read_seeds(model))
    return graph


@dataclasses.dataclass
class Seeds:
    """What a model's nodes say about their source layers, read from the model alone: per node (in order)
    its name, hints and absorbed records, and the hints of each output tensor's writer."""

    names: list[str]
    hints: list[tuple[tuple[str, ...], tuple[dict, ...]]]
    producers: dict[str, tuple[str, ...]]


def read_seeds(model: onnx.ModelProto) -> Seeds:
    weights = single_use_initializers(model)
    seeds = Seeds([], [], {})
    for proto in model.graph.node:
        if proto.metadata_props:
            recorded = recorded_hints(proto)
            node_hints = tuple(recorded) if recorded is not None else tuple(exporter_hints(proto, weights))
            taken = tuple(recorded_absorbed(proto)) or tuple(exporter_absorbed(proto))
        else:  # nothing recorded and nothing merged into it: most nodes of most exports (0.8 s → 0.5 s at 100k)
            node_hints, taken = tuple(exporter_hints(proto, weights)), ()
        seeds.names.append(proto.name)
        seeds.hints.append((node_hints, taken))
        if node_hints:
            for out in proto.output:
                if out:
                    seeds.producers[out] = node_hints
    return seeds


def attach_seeds(graph: gs.Graph, seeds: Seeds) -> None:
    """Give the nodes of ``graph`` (imported from the model ``seeds`` were read from) their hints."""
    nodes = graph.nodes
    if len(seeds.names) == len(nodes) and all(name == n.name for name, n in zip(seeds.names, nodes)):
        pairs = zip(nodes, seeds.hints)
    else:  # matched by name (a nameless node, or one of a name another took, gets none)
        by_name = {name: found for name, found in zip(seeds.names, seeds.hints) if name}
        pairs = ((n, by_name.get(n.name, ((), ()))) for n in nodes)
    for node, (node_hints, taken) in pairs:
        if node_hints or taken:
            set_hints(node, node_hints, taken)
    setattr(graph, _PRODUCERS, seeds.producers)


@contextlib.contextmanager
def rewriting(graph: gs.Graph, match: Any) -> Iterator[None]:
    """Around one rewrite of ``match``: new and rewritten matched nodes answer for the whole match.

    Bookkeeping that fails costs the hints of this rewrite (logged), never the rewrite itself."""
    try:
        before = len(graph.nodes)
        matched = list({id(n): n for n in _nodes_in(match)}.values())
        shapes = {id(n): _shape(n) for n in matched}
    except Exception as exc:  # noqa: BLE001 - provenance is a report aid; the pass must not pay for it
        log.warning("provenance not recorded for a rewrite: %s: %s", type(exc).__name__, exc)
        yield
        return
    yield
    try:
        _pool(graph, matched, shapes, before)
    except Exception as exc:  # noqa: BLE001 - as above
        log.warning("provenance not recorded for a rewrite: %s: %s", type(exc).__name__, exc)


def _pool(graph: gs.Graph, matched: list[gs.Node], shapes: dict[int, tuple], before: int) -> None:
    pooled = tuple(dict.fromkeys(h for n in matched for h in hints(n)))
    graph_outputs = {id(t) for t in graph.outputs}
    live = [_live(n, graph_outputs) for n in matched]
    dead = [n for n, alive in zip(matched, live) if not alive]
    taken = tuple(a for n in matched for a in absorbed(n)) + tuple(r for r in map(_record, dead) if len(r) > 2)
    # context a match only looked at (the node after a chain, whose input was merely rewired) keeps its own
    rewritten = [n for n, alive in zip(matched, live) if alive and _rewritten(n, shapes[id(n)])]
    for node in list(graph.nodes[before:]) + rewritten:
        set_hints(node, hints(node) + pooled, _merge(absorbed(node), taken, node))


def stamp(graph: gs.Graph, model: onnx.ModelProto) -> None:
    """Write the hints of ``graph``'s nodes into ``model`` (exported from ``graph``, nodes in the same order)."""
    producers: dict[str, tuple[str, ...]] = getattr(graph, _PRODUCERS, {})
    for node, proto in zip(graph.nodes, model.graph.node):
        node_hints = hints(node)
        if not node_hints:
            node_hints = next((producers[o.name] for o in node.outputs if o.name in producers), ())
        write_list(proto, PROVENANCE_KEY, node_hints)
        write_list(proto, ABSORBED_KEY, absorbed(node))


def _nodes_in(value: Any) -> list[gs.Node]:
    """Every ``gs.Node`` a match holds: in its fields, in tuples/lists of them, in nested matches (in order)."""
    found: list[gs.Node] = []
    _collect(value, 0, found)
    return found


def _collect(value: Any, depth: int, found: list[gs.Node]) -> None:
    if isinstance(value, gs.Node):
        found.append(value)
    elif depth < 3:
        items = value if isinstance(value, (tuple, list)) else [getattr(value, n) for n in _field_names(type(value))]
        for item in items:
            _collect(item, depth + 1, found)


@functools.lru_cache(maxsize=None)
def _field_names(value_type: type) -> tuple[str, ...]:
    """The fields of a dataclass type (a match), none for any other type."""
    return tuple(f.name for f in dataclasses.fields(value_type)) if dataclasses.is_dataclass(value_type) else ()


def _shape(node: gs.Node) -> tuple[dict, set[int], list[int]]:
    return dict(node.attrs), {id(t) for t in node.inputs}, [id(t) for t in node.outputs]


def _rewritten(node: gs.Node, before: tuple[dict, set[int], list[int]]) -> bool:
    """The rewrite changed ``node`` itself: its attributes, its outputs, or a constant it now reads."""
    attrs, inputs, outputs = before
    if set(node.attrs) != set(attrs) or any(node.attrs[k] is not v for k, v in attrs.items()):
        return True
    if [id(t) for t in node.outputs] != outputs:
        return True
    return any(isinstance(t, gs.Constant) and id(t) not in inputs for t in node.inputs)


def _live(node: gs.Node, graph_outputs: set[int]) -> bool:
    return any(t.outputs or id(t) in graph_outputs for t in node.outputs)


def _record(node: gs.Node) -> dict:
    record: dict[str, object] = {"op": node.op, "name": node.name}
    attrs = node.attrs
    for key in SALIENT if attrs else ():
        if key in attrs:
            record[key] = _plain(attrs[key])
    # opset ≥ 18 Reduce* take their axes, Pad its pads, as a constant second input
    key = "axes" if node.op.startswith("Reduce") else "pads" if node.op == "Pad" else ""
    if key and key not in record and len(node.inputs) > 1:
        value = const_value(node.inputs[1])
        if value is not None:
            record[key] = [int(a) for a in np.ravel(value)]
    return record


def _merge(own: tuple[dict, ...], taken: tuple[dict, ...], node: gs.Node) -> tuple[dict, ...]:
    records = list(own)
    for record in taken:
        if record not in records and record.get("name") != node.name:
            records.append(record)
    return tuple(records)


def _plain(value: Any) -> object:
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value)
    if isinstance(value, (np.integer, int, bool)):
        return int(value)
    if isinstance(value, (str, bytes)):
        return value.decode() if isinstance(value, bytes) else value
    return str(value)
