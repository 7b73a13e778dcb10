"""io-layout: with ``--layout nchw``, NHWC graph inputs and outputs become NCHW and their Transposes go.

Before (tf2onnx export of a Keras CNN)::

    x[N,H,W,C] ─T(0,3,1,2)─ Conv ─ … ─ Conv ─T(0,2,3,1)─ y[N,H,W,C]
    x[N,H,W,C] ─ Mul(s) ─ Add(b) ─T(0,3,1,2)─ Conv …                (preprocessing before the Transpose)

After::

    x[N,C,H,W] ─ Conv ─ … ─ Conv ─ y[N,C,H,W]
    x[N,C,H,W] ─T(0,2,3,1)─ Mul(s) ─ Add(b) ─T(0,3,1,2)─ Conv …      (push-transposes then cancels the pair)

An input counts as NHWC when it is 4-D and every path from it through layout-agnostic ops ends in a
``Transpose(0,3,1,2)``; an output counts as NHWC when it is 4-D and made by a ``Transpose(0,2,3,1)``.
Each change is recorded as an :class:`InterfaceChange` (``new = transpose(old, (0,3,1,2))``), which the
pass manager writes to the ``onnxmend.interface`` metadata so validation feeds and reads the new layout.

Non-goals: 3-D/5-D tensors, and guessing the layout of inputs that reach a layout-sensitive op directly.
With ``--layout keep`` (the default) the pass changes nothing.
"""

from __future__ import annotations

import logging

import onnx_graphsurgeon as gs

from onnxmend.core.graph import const_value, output_ids, producer, replace_uses
from onnxmend.passes.infra.base import InterfaceChange, Pass, PassContext, PassResult
from onnxmend.passes.infra.naming import Namer
from onnxmend.passes.layout.perm import NCHW_TO_NHWC, NHWC_TO_NCHW, perm_of
from onnxmend.passes.layout.transpose_handlers import HANDLERS, LAYOUT_SENSITIVE

log = logging.getLogger(__name__)

_SEARCH_LIMIT = 64


class IoLayout(Pass):
    name = "io-layout"
    fixes = "Turns NHWC graph inputs/outputs into NCHW (on request), removing the Transposes at the boundary."
    preconditions = "Runs only with layout=nchw; the tensors are 4-D; push-transposes runs after it to cancel pairs."

    def requires(self, graph: gs.Graph, ctx: PassContext) -> str | None:
        if ctx.keep_interface:
            return "--keep-interface keeps the inputs' and outputs' layout"
        return None if ctx.layout == "nchw" else "the interface is kept (it runs only with --layout nchw)"

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        result = PassResult()
        if self.requires(graph, ctx):
            return result
        names = Namer(graph)
        for tensor in list(graph.inputs):
            reason = _convert_input(graph, tensor, names)
            if reason:
                result.skip(tensor.name, reason)
            else:
                result.interface.append(_change(tensor, "input"))
                result.changed += 1
        for tensor in list(graph.outputs):
            reason = _convert_output(graph, tensor)
            if reason:
                result.skip(tensor.name, reason)
            else:
                result.interface.append(_change(tensor, "output"))
                result.changed += 1
        return result


def _change(tensor: gs.Tensor, kind: str) -> InterfaceChange:
    return InterfaceChange(tensor.name, kind, NHWC_TO_NCHW, was="NHWC", now="NCHW")  # type: ignore[arg-type]


def _to_nchw(shape: list | None) -> list | None:
    return None if shape is None else [shape[i] for i in NHWC_TO_NCHW]


def _convert_input(graph: gs.Graph, tensor: gs.Tensor, names: Namer) -> str:
    if tensor.shape is None or len(tensor.shape) != 4:
        return "not a 4-D input"
    consumers = list(tensor.outputs)
    direct = [c for c in consumers if c.op == "Transpose" and perm_of(c) == NHWC_TO_NCHW]
    outputs = output_ids(graph)
    if consumers and len(direct) == len(consumers) and not any(id(t.outputs[0]) in outputs for t in direct):
        # x ─T(0,3,1,2)─ y  becomes  x' (already NCHW) feeding y's consumers.
        for transpose in direct:
            replace_uses(transpose.outputs[0], tensor)
            transpose.inputs.clear()
            transpose.outputs.clear()
    elif _ends_in_nchw_transposes(tensor):
        # The preprocessing between x and its Transpose still expects NHWC: hand it the transposed x.
        nhwc = gs.Variable(names(f"{tensor.name}_nhwc"), dtype=tensor.dtype, shape=list(tensor.shape))
        replace_uses(tensor, nhwc)
        graph.nodes.append(gs.Node("Transpose", names(f"{tensor.name}_to_nhwc"), {"perm": list(NCHW_TO_NHWC)}, [tensor], [nhwc]))
    else:
        return "no path from this input ends in Transpose(0,3,1,2), so it is not known to be NHWC"
    tensor.shape = _to_nchw(list(tensor.shape))
    return ""


def _ends_in_nchw_transposes(tensor: gs.Tensor) -> bool:
    """Every path from ``tensor`` through single-data-input table ops ends in Transpose(0,3,1,2)."""
    frontier, seen, found = [tensor], 0, False
    while frontier:
        current = frontier.pop()
        if not current.outputs:
            return False  # a graph output (or dead end) reached before any Transpose
        for consumer in current.outputs:
            seen += 1
            if seen > _SEARCH_LIMIT:
                return False
            if consumer.op == "Transpose":
                if perm_of(consumer) != NHWC_TO_NCHW:
                    return False
                found = True
            elif consumer.op in HANDLERS and consumer.op not in LAYOUT_SENSITIVE and _other_inputs_constant(consumer, current):
                frontier.extend(consumer.outputs)
            else:
                return False
    return found


def _other_inputs_constant(node: gs.Node, data: gs.Tensor) -> bool:
    return all(t is data or not t.name or const_value(t) is not None for t in node.inputs)


def _convert_output(graph: gs.Graph, tensor: gs.Tensor) -> str:
    if tensor.shape is None or len(tensor.shape) != 4:
        return "not a 4-D output"
    maker = producer(tensor)
    if maker is None or maker.op != "Transpose" or perm_of(maker) != NCHW_TO_NHWC:
        return "not made by a Transpose(0,2,3,1), so it is not known to be NHWC"
    source = maker.inputs[0]
    source_maker = producer(source)
    if source_maker is not None and len(source.outputs) == 1 and all(t is not source for t in graph.outputs):
        # The op before the Transpose writes the output directly, keeping its name.
        source_maker.outputs[source_maker.outputs.index(source)] = tensor
        maker.inputs.clear()
        maker.outputs.clear()
    else:
        maker.op, maker.attrs = "Identity", {}
    tensor.shape = _to_nchw(list(tensor.shape))
    return ""


PASS = IoLayout
