"""fold-constants: subgraphs whose inputs are all constants (including Shape of static shapes) are
computed once, offline — in the main graph and inside If/Loop/Scan bodies.

Before::

    W(const) ─Transpose─┐
    x ──────────────────Conv─ y

    If(cond) ─ then: Add(x, Mul(Constant 2, k)) ─ else: …

After::

    W'(const) ───────────┐
    x ──────────────────Conv─ y

    If(cond) ─ then: Add(x, 2k) ─ else: …        (an If on a constant condition is replaced by its branch)

When graphsurgeon's flattening of a constant-condition If leaves a reader of a folded branch value
unconnected (ONNX's expanded AffineGrid: a nested If's Div), the graph is folded again with the Ifs kept.

Static reads of a shape (``Shape`` with its ``start``/``end``, and ``Gather``/``Slice`` of it) are folded
first (:mod:`~onnxmend.passes.cleanup.shape_reads`; graphsurgeon's shape folding ignores ``start``/``end``),
then onnx-graphsurgeon's ``fold_constants`` does the evaluation, with onnxruntime on the CPU — on whatever
constants the file holds, so it runs in the graph worker (:mod:`onnxmend.core.isolated`): a Loop that
never ends, a ConstantOfShape of 8 GiB or a kernel that crashes on a zero-size constant cost this pass
(skipped, with the reason), never the process. A folded tensor may not be larger than the largest tensor
the model already stores (64 MiB at least), so folding never bloats a model by orders of magnitude. A
graph with nothing foldable is answered without the worker (graphsurgeon would copy the whole graph to
find nothing). Its matcher is a dry run on a copy of the graph.

The partitions graphsurgeon evaluates are stamped with IR version ``min(model's, 10)`` while folding:
graphsurgeon gives a subgraph no IR version of its own, so onnx's newest (14 with onnx 1.23) would be
written, which onnxruntime 1.31 refuses ("Unsupported model IR version") — the reason onnxsim skips
constant folding on such graphs. The model keeps its own IR version.

Non-goals: folding through nodes graphsurgeon excludes (Q/DQ pairs).
"""

from __future__ import annotations

from typing import Iterator

import onnx
import onnx_graphsurgeon as gs

from onnxmend.core.errors import first_line
from onnxmend.core.graph import import_graph
from onnxmend.core.isolated import DEFAULT_TIMEOUT_S, graph_worker
from onnxmend.core.large import is_large, tensor_bytes
from onnxmend.core.lazy import LazyFileValues
from onnxmend.core.worker import RemoteFailure, WorkerFailure
from onnxmend.passes.cleanup.shape_reads import fold_shape_reads
from onnxmend.passes.infra.base import Pass, PassContext, PassResult
from onnxmend.passes.infra.graph_ops import may_hold_subgraphs, sweep

# The IR version of the partitions evaluated while folding: one every onnxruntime since 1.17 loads.
FOLD_IR_VERSION = 10
MIN_SIZE_THRESHOLD = 64 << 20
SECONDS_PER_NODE = 0.002  # the worker's time limit grows with the graph: importing and exporting take time


class FoldConstants(Pass):
    name = "fold-constants"
    fixes = ("Computes subgraphs whose inputs are all constants (including Shape of static shapes) once, "
             "offline, also inside If/Loop bodies.")
    preconditions = "onnxruntime can run the constant subgraph on CPU."

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        result = PassResult()
        if not any(has_foldable(g) for g in all_graphs(graph)):
            return result  # graphsurgeon would copy the whole graph to find nothing
        before = count_nodes(graph)
        for g in list(all_graphs(graph)):
            fold_shape_reads(g)  # graphsurgeon's own shape folding ignores Shape's start/end
        try:
            folded = _fold_in_worker(graph)
        except (WorkerFailure, RemoteFailure, ValueError) as exc:  # a hang, a crash, an ORT error, a model past 2 GiB
            result.skip("graph", f"constant folding failed: {first_line(exc, 200)}")  # the shape reads stay folded
        else:
            if count_nodes(folded) < count_nodes(graph):
                graph.nodes, graph.inputs, graph.outputs = folded.nodes, folded.inputs, folded.outputs
        for g in list(all_graphs(graph)):
            sweep(g)
        result.changed = max(0, before - count_nodes(graph))
        return result


def has_foldable(graph: gs.Graph) -> bool:
    """True when some node could fold: a Constant node, a Shape of a tensor of known rank (graphsurgeon
    folds the static dims it reads), or an op whose inputs are all constants."""
    for node in graph.nodes:
        if node.op == "Constant" or (node.op == "Shape" and node.inputs and node.inputs[0].shape is not None):
            return True
        if may_hold_subgraphs(node) and any(isinstance(v, gs.Graph) for v in node.attrs.values()):
            continue
        if constant_inputs(node):
            return True
    return False


def constant_inputs(node: gs.Node) -> list[gs.Constant]:
    """The node's inputs when it has some and every one given is a constant (what a fold evaluates); else []."""
    present = []
    for tensor in node.inputs:
        if tensor.name:
            if not isinstance(tensor, gs.Constant):
                return []  # (most nodes, at their first input)
            present.append(tensor)
    return present


def all_graphs(graph: gs.Graph) -> Iterator[gs.Graph]:
    """``graph`` and every subgraph (If branches, Loop and Scan bodies), depth first."""
    yield graph
    for node in graph.nodes:
        if may_hold_subgraphs(node):
            for value in node.attrs.values():
                if isinstance(value, gs.Graph):
                    yield from all_graphs(value)


def count_nodes(graph: gs.Graph) -> int:
    """Nodes of ``graph`` and of all its subgraphs."""
    return sum(len(g.nodes) for g in all_graphs(graph))


def _fold_in_worker(graph: gs.Graph) -> gs.Graph:
    """The folded graph, evaluated in the graph worker. A graph past protobuf's 2 GiB cannot travel as
    bytes: it is folded in this process (the size threshold still bounds what a fold may create). Weights
    still in the input's data file are read first where a foldable node takes them; the others travel as
    references to the file and come back as such."""
    _read_foldable_inputs(graph)
    model = gs.export_onnx(graph, do_type_check=False)
    if is_large(model):
        try:
            return import_graph(fold_serialised(None, model))  # type: ignore[arg-type]
        except Exception as exc:  # onnxruntime or graphsurgeon failing in process: a skip, as from the worker
            raise ValueError(f"{type(exc).__name__}: {first_line(exc, 200)}") from exc
    data = model.SerializeToString()
    folded = graph_worker(len(data)).call(
        f"{__name__}:fold_serialised", actor="constant folding (onnxruntime)", doing="folding the graph's constants",
        timeout_s=DEFAULT_TIMEOUT_S + SECONDS_PER_NODE * len(graph.nodes), data=data)
    return import_graph(onnx.load_from_string(folded))


def _read_foldable_inputs(graph: gs.Graph) -> None:
    """Load the file-backed constants (:class:`~onnxmend.core.lazy.LazyFileValues`) that nodes with only
    constant inputs read: what the fold evaluates must be in memory, in this process or the worker."""
    for g in all_graphs(graph):
        for node in g.nodes:
            for tensor in constant_inputs(node):
                if isinstance(tensor._values, LazyFileValues):
                    tensor.values  # noqa: B018  (graphsurgeon caches what it loads)


def fold_serialised(data: bytes | None, model: onnx.ModelProto | None = None) -> bytes | onnx.ModelProto:
    """The worker side: fold a serialised model's constants (subgraph partitions stamped with an IR version
    onnxruntime loads) and send it back serialised; given ``model`` instead (in process), the folded model."""
    graph = _folded(model if model is not None else onnx.load_from_string(data), flatten=True)
    if _dangling(graph) and data is not None:
        # a flattened If left a reader unconnected: fold again with the Ifs kept, from the bytes (the first
        # fold renamed the initializers it flattened in place; past 2 GiB there are no bytes, and the
        # manager's checker rejects the broken fold)
        graph = _folded(onnx.load_from_string(data), flatten=False)
    folded = gs.export_onnx(graph, do_type_check=False)
    return folded if data is None else folded.SerializeToString()


def _folded(model: onnx.ModelProto, flatten: bool) -> gs.Graph:
    largest = max((tensor_bytes(t) for t in model.graph.initializer), default=0)
    graph = gs.import_onnx(model)
    for g in all_graphs(graph):
        g.ir_version = min(graph.ir_version or FOLD_IR_VERSION, FOLD_IR_VERSION)
    graph.fold_constants(error_ok=False, fold_shapes=False, partitioning="basic", flatten_subgraphs=flatten,
                         size_threshold=max(MIN_SIZE_THRESHOLD, largest))
    for g in list(all_graphs(graph)):
        sweep(g)
    for g in all_graphs(graph):
        g.ir_version = None
    graph.ir_version = model.ir_version
    return graph


def _dangling(graph: gs.Graph) -> list[str]:
    """Tensors the main graph's nodes read that no node of it produces (graphsurgeon, flattening an If whose
    branch had a value folded, can leave a reader on the If's output or on the branch's old tensor)."""
    known = {id(t) for t in graph.inputs} | {id(t) for node in graph.nodes for t in node.outputs}
    return [t.name for node in graph.nodes for t in node.inputs
            if t.name and isinstance(t, gs.Variable) and id(t) not in known]


PASS = FoldConstants
