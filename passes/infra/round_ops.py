"""The steps of a round, for the manager: the first graph (the input inferred and imported), run one pass
on the round's graph, export the graph like the model it came from, and put the inferred shapes of an
exported model back onto the graph."""

from __future__ import annotations

import time
from concurrent.futures import wait
from dataclasses import dataclass
from typing import Mapping

import onnx
import onnx_graphsurgeon as gs

from onnxmend.core.background import in_thread
from onnxmend.core.errors import first_line
from onnxmend.core.graph import static_dims
from onnxmend.core.interface import read_interface, write_interface
from onnxmend.core.isolated import infer_shapes_isolated
from onnxmend.core.large import is_heavy
from onnxmend.passes.infra.base import InterfaceChange, Pass, PassContext, PassResult
from onnxmend.passes.infra.graph_ops import op_counts, sweep, toposort
from onnxmend.passes.infra.provenance import import_graph, read_seeds, stamp
from onnxmend.passes.infra.records import PassRecord
from onnxmend.passes.infra.shapes import infer_new


@dataclass
class Applied:
    """One pass run on the round's graph: what it said, its record, why it failed (empty if it did not),
    and the graph's op counts after it (what the next pass's record starts from)."""

    pass_: Pass
    result: PassResult
    record: PassRecord
    failure: str = ""
    counts: dict[str, int] | None = None


def first_graph(model: onnx.ModelProto) -> tuple[onnx.ModelProto, gs.Graph]:
    """The input with its shapes inferred in the graph worker (as given when inference fails) and the
    graphsurgeon graph of that, provenance attached. While the worker infers, this thread reads the nodes'
    provenance from the input (the same nodes: inference only adds types): 0.6 s of the 1 s it waited at
    100k nodes. A heavy input, which inference may annotate in place, is read after it."""
    if is_heavy(model):
        inferred = infer_shapes_isolated(model)
        return inferred, import_graph(inferred)
    inference = in_thread(infer_shapes_isolated, model, name="onnxmend-input-shapes")
    try:
        seeds = read_seeds(model)
    finally:
        wait([inference])  # the worker answers one call at a time: never left with one in flight
    inferred = inference.result()
    return inferred, import_graph(inferred, seeds)


def apply_once(graph: gs.Graph, p: Pass, ctx: PassContext, round_no: int,
               counts: dict[str, int] | None = None) -> Applied:
    """Run ``p`` on ``graph``; after a change, sweep dead nodes, re-sort, and infer the new tensors' shapes.

    ``counts`` are the graph's op counts when the caller knows them (the previous pass's); a pass that
    changed nothing left the graph as it was (tests/passes/infra/test_no_change.py), so they carry over
    uncounted, and a pass that changed nothing is not followed by a sweep, a sort or inference either; nor is
    one whose result says it left the graph swept and sorted (``tidy``) swept and sorted again.
    """
    start = time.perf_counter()
    before = counts if counts is not None else op_counts(graph)
    try:
        result = p.apply(graph, ctx)
        if result.changed and not result.discard:
            if not result.tidy:
                sweep(graph)
                toposort(graph)
            infer_new(graph, ctx.opset)
    except Exception as exc:  # a pass bug must cost the user that pass, never the pipeline
        record = PassRecord(p.name, round_no, "rejected", 0, time.perf_counter() - start)
        return Applied(p, PassResult(), record, f"the pass raised {type(exc).__name__}: {first_line(exc)}")
    after = op_counts(graph) if result.changed or result.discard else before
    deltas = {op: (before.get(op, 0), after.get(op, 0))
              for op in sorted(set(before) | set(after)) if before.get(op, 0) != after.get(op, 0)}
    record = PassRecord(p.name, round_no, "applied", result.changed, time.perf_counter() - start, deltas)
    return Applied(p, result, record, counts=after)


def export_like(graph: gs.Graph, like: onnx.ModelProto, interface: list[InterfaceChange]) -> onnx.ModelProto:
    """Export ``graph`` keeping the original model's IR version, producer and metadata."""
    model = gs.export_onnx(graph, do_type_check=False)
    stamp(graph, model)  # node provenance, which graphsurgeon does not carry
    model.ir_version = like.ir_version
    model.producer_name, model.producer_version = like.producer_name, like.producer_version
    model.metadata_props.extend(like.metadata_props)
    if interface:
        merged = read_interface(model)
        for change in interface:
            merged[change.tensor] = _compose(merged.get(change.tensor), change)
        write_interface(model, merged)
    return model


def interface_of(model: onnx.ModelProto) -> list[tuple[str, str, int, tuple[object, ...]]]:
    """(kind, name, dtype, dims) of every graph input and output; dynamic dims compare equal whatever their
    names (shape inference may rename ``unk__3`` to ``batch``), a number stays a number."""
    inits = {t.name for t in model.graph.initializer}
    rows = []
    for kind, infos in (("input", [vi for vi in model.graph.input if vi.name not in inits]), ("output", model.graph.output)):
        for vi in infos:
            tt = vi.type.tensor_type
            dims = tuple(d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else "?" for d in tt.shape.dim)
            rows.append((kind, vi.name, tt.elem_type, dims if tt.HasField("shape") else ("unknown rank",)))
    return rows


def interface_moved(before: onnx.ModelProto, after: onnx.ModelProto) -> str:
    """Why ``after``'s interface is not ``before``'s (empty when it is the same), for --keep-interface."""
    old, new = interface_of(before), interface_of(after)
    for a, b in zip(old, new):
        if a != b:
            return (f"it changes the graph's {a[0]} {a[1]} (dtype {a[2]}, dims {list(a[3])}) into {b[1]} "
                    f"(dtype {b[2]}, dims {list(b[3])}), which --keep-interface forbids")
    if len(old) != len(new):
        return f"it changes the number of graph inputs/outputs from {len(old)} to {len(new)}, which --keep-interface forbids"
    return ""


def refresh_shapes(graph: gs.Graph, model: onnx.ModelProto) -> int:
    """Give the graph's tensors the shapes and dtypes strict shape inference found for ``model`` (exported
    from ``graph``, same names); returns how many tensors' shape or dtype that changed.

    A tensor with a dtype and a static shape is left as it is: it went out as value_info, and strict
    inference refuses one it would type otherwise and keeps it as given (most tensors, each 5 µs of parsing)."""
    unsettled = [t for node in graph.nodes for t in node.outputs
                 if t.dtype is None or static_dims(t, range(len(t.shape or ()))) is None]
    if not unsettled:
        return 0  # (after a fix, usually: then the value_info is not even indexed)
    infos = {vi.name: vi for vi in (*model.graph.value_info, *model.graph.input, *model.graph.output)}
    changed = 0
    for tensor in unsettled:
        info = infos.get(tensor.name)
        if info is not None and info.type.HasField("tensor_type") and info.type.tensor_type.HasField("shape"):
            shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                     for d in info.type.tensor_type.shape.dim]
            elem = info.type.tensor_type.elem_type
            dtype = onnx.helper.tensor_dtype_to_np_dtype(elem) if elem else tensor.dtype
            if shape != _listed(tensor.shape) or dtype != tensor.dtype:
                tensor.shape, tensor.dtype = shape, dtype
                changed += 1
    return changed


def _listed(shape: object) -> object:
    return list(shape) if isinstance(shape, (list, tuple)) else shape


def _compose(previous: Mapping[str, object] | None, change: InterfaceChange) -> dict[str, object]:
    if previous is None:
        return change.to_json()
    perm = [previous["perm"][i] for i in change.perm]  # type: ignore[index]
    return {"kind": change.kind, "perm": perm, "was": previous["was"], "now": change.now}

