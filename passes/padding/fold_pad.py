"""fold-pad: a constant zero Pad in front of a Conv or pool becomes the op's own ``pads``.

Before::

    x ─ Pad(constant 0, [0,0,1,0, 0,0,1,1]) ─ Conv(pads=[0,0,0,0])
    x ─ Pad(NHWC, [0,1,0,0, 0,1,1,0]) ─ Transpose(0,3,1,2) ─ Conv
    x ─ Pad(p1) ─ Pad(p2) ─ …

After::

    x ─ Conv(pads=[1,0,1,1])
    x ─ Transpose(0,3,1,2) ─ Conv(pads=[1,0,1,1])        (the pads are permuted into the Conv's layout)
    x ─ Pad(p1 + p2) ─ …

Rules: Conv takes any zero padding. MaxPool takes zero padding only when its input is provably
non-negative (Relu, Clip(min >= 0), Sigmoid, …), since a padded zero could otherwise be the maximum;
a ``-inf`` Pad always folds into MaxPool. AveragePool takes it only with ``count_include_pad=1`` (set
when the pool has no pads of its own), because padded zeros count in the divisor. Pools also need
``ceil_mode=0`` and pads below the kernel size (onnxruntime rejects larger ones). Consecutive constant
Pads with the same value and non-negative pads merge into one.

A Pad read by several nodes folds into each of them when every one can absorb it (a Pad feeding two
Convs, as after a shared ``ZeroPadding2D``)::

    x ─ Pad ─┬─ Conv a          x ─┬─ Conv a(pads=…)
             └─ Conv b             └─ Conv b(pads=…)

An all-zero Pad is removed wherever it is, whatever its mode and however many nodes read it; when its
output is a graph output, its producer writes that output instead.

Never folded, each with its own reason: reflect/edge/wrap modes, non-zero values, negative pads (they
crop), pads on the batch/channel axes, a shared Pad with one reader that cannot absorb it (it would have
to stay, so folding the others saves nothing), a Pad output that is a graph output, and
ConvTranspose: its ``pads`` crop the *output*, so input padding would need negative pads, which ONNX
forbids. In the ``portable`` preset a fold that would leave asymmetric pads is skipped (split-asymmetric-pads
would undo it).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.core.graph import attr_ints, bypass, consumers, output_ids, producer
from onnxmend.passes.infra.base import MatchingPass, PassContext
from onnxmend.passes.infra.conv_attrs import auto_pad, node_pads
from onnxmend.passes.infra.naming import Namer
from onnxmend.passes.padding.non_negative import is_non_negative
from onnxmend.passes.padding.pad_spec import PadSpec, read_pad

log = logging.getLogger(__name__)

TARGETS = ("Conv", "MaxPool", "AveragePool")


@dataclass(frozen=True)
class PadFold:
    """A Pad that folds into ``target``; ``begins``/``ends`` are the target's new spatial pads."""

    pad: gs.Node
    target: gs.Node
    transpose: gs.Node | None
    begins: tuple[int, ...]
    ends: tuple[int, ...]


@dataclass(frozen=True)
class SharedPadFold:
    """A Pad read by several nodes that all absorb it: one :class:`PadFold` per reader."""

    pad: gs.Node
    folds: tuple[PadFold, ...]


@dataclass(frozen=True)
class PadMerge:
    """``Pad(Pad(x, p1), p2)`` becomes ``Pad(x, pads)`` in ``outer``."""

    inner: gs.Node
    outer: gs.Node
    pads: tuple[int, ...]


@dataclass(frozen=True)
class ZeroPad:
    """A Pad that pads nothing and is removed."""

    pad: gs.Node


class FoldPad(MatchingPass):
    name = "fold-pad"
    fixes = "Moves constant zero Pad nodes into the following Conv/MaxPool/AveragePool, merges consecutive Pads."
    preconditions = ("Constant mode, zero value (or -inf for MaxPool), static non-negative spatial pads; "
                     "every reader of the Pad can absorb it.")

    def anchors(self, graph: gs.Graph) -> list[gs.Node]:
        return [n for n in graph.nodes if n.op == "Pad" and n.outputs]

    def match(self, graph: gs.Graph, pad: gs.Node, ctx: PassContext) -> PadFold | SharedPadFold | PadMerge | ZeroPad | str:
        spec = read_pad(pad, ctx.opset)
        if isinstance(spec, str):
            return spec
        outputs = output_ids(graph)
        if not any(spec.begins) and not any(spec.ends):
            return _match_zero(pad, outputs)
        reason = _common_blocker(pad, spec, outputs)
        if reason:
            return reason
        readers = consumers(pad.outputs[0])
        if len(readers) > 1:
            return _match_shared(pad, spec, ctx, outputs, readers)
        if readers[0].op == "Pad":
            return _match_merge(pad, spec, readers[0], ctx.opset)
        return _match(pad, spec, ctx, outputs, readers[0])

    def rewrite(self, graph: gs.Graph, match: PadFold | SharedPadFold | PadMerge | ZeroPad, ctx: PassContext,
                names: Namer) -> None:
        if isinstance(match, ZeroPad):
            bypass(match.pad, output_ids(graph))
        elif isinstance(match, PadMerge):
            _merge(match)
        else:
            for fold in match.folds if isinstance(match, SharedPadFold) else (match,):
                _rewrite(fold)
            match.pad.outputs.clear()


def _match_zero(pad: gs.Node, graph_outputs: set[int]) -> ZeroPad | str:
    """An all-zero Pad is an identity in every mode; it goes unless nothing could write its output name."""
    source, out = pad.inputs[0], pad.outputs[0]
    if id(out) in graph_outputs and (producer(source) is None or len(source.outputs) != 1 or id(source) in graph_outputs):
        return "the all-zero Pad links a graph input or constant to a graph output"
    return ZeroPad(pad)


def _match_shared(pad: gs.Node, spec: PadSpec, ctx: PassContext, graph_outputs: set[int],
                  readers: list[gs.Node]) -> SharedPadFold | str:
    """Fold a Pad into every node that reads it, or leave it whole (a Pad kept for one reader saves nothing)."""
    folds = []
    for reader in readers:
        found = "it is a Pad" if reader.op == "Pad" else _match(pad, spec, ctx, graph_outputs, reader)
        if isinstance(found, str):
            return f"the Pad output has {len(readers)} consumers and {reader.op} {reader.name or reader.outputs[0].name} cannot absorb it: {found}"
        folds.append(found)
    return SharedPadFold(pad, tuple(folds))


def _common_blocker(pad: gs.Node, spec: PadSpec, graph_outputs: set[int]) -> str:
    out = pad.outputs[0]
    if id(out) in graph_outputs:
        return "the Pad output is a graph output"
    if spec.mode != "constant":
        return f"Pad mode {spec.mode!r} is not constant padding"
    if any(p < 0 for p in spec.begins + spec.ends):
        return "negative pads crop the tensor"
    return ""


def _match(pad: gs.Node, spec: PadSpec, ctx: PassContext, graph_outputs: set[int], consumer: gs.Node) -> PadFold | str:
    """Fold ``pad`` into ``consumer`` (a Conv or pool, maybe behind a layout Transpose), or why not."""
    begins, ends = list(spec.begins), list(spec.ends)
    transpose = None
    if consumer.op == "Transpose":
        transpose, consumer = consumer, None
        t_out = transpose.outputs[0]
        if id(t_out) in graph_outputs or len(t_out.outputs) != 1:
            return "the Transpose after the Pad feeds more than one node"
        perm = attr_ints(transpose, "perm", range(spec.rank - 1, -1, -1))
        begins, ends = [begins[p] for p in perm], [ends[p] for p in perm]
        consumer = t_out.outputs[0]
    if consumer.op == "ConvTranspose":
        return "ConvTranspose pads crop its output; input padding would need negative pads"
    if consumer.op not in TARGETS:
        return f"the consumer {consumer.op} cannot absorb padding"
    if consumer.inputs[0] is not (transpose or pad).outputs[0]:
        return f"the Pad feeds an input of {consumer.op} other than its data"
    if any(begins[:2]) or any(ends[:2]):
        return "pads on the batch/channel axes cannot move into a Conv or pool"
    if auto_pad(consumer) not in ("NOTSET", "VALID"):
        return f"the {consumer.op} uses auto_pad={auto_pad(consumer)}; resolve-auto-pad runs first"
    reason = _value_blocker(consumer, spec.value, pad.inputs[0]) or _pool_blocker(consumer)
    if reason:
        return reason
    rank = len(begins) - 2
    own_b, own_e = node_pads(consumer, rank) if auto_pad(consumer) == "NOTSET" else ([0] * rank, [0] * rank)
    new_b = tuple(b + o for b, o in zip(begins[2:], own_b))
    new_e = tuple(e + o for e, o in zip(ends[2:], own_e))
    if consumer.op in ("MaxPool", "AveragePool"):
        kernel = attr_ints(consumer, "kernel_shape", [])
        if any(p >= k for p, k in zip(new_b + new_e, kernel + kernel)):
            return "the combined pads would reach the kernel size, which onnxruntime rejects for pools"
        if consumer.op == "AveragePool" and not consumer.attrs.get("count_include_pad", 0) and any(own_b + own_e):
            return "the AveragePool has its own pads with count_include_pad=0, so padded zeros would change its divisor"
    if ctx.preset == "portable" and new_b != new_e:
        return "the folded pads would be asymmetric, which the portable preset avoids"
    return PadFold(pad, consumer, transpose, new_b, new_e)


def _value_blocker(consumer: gs.Node, value: float, data: gs.Tensor) -> str:
    if consumer.op == "MaxPool" and value == -math.inf:
        return ""
    if value != 0:
        return f"the pad value {value:g} is not zero"
    if consumer.op == "MaxPool" and not is_non_negative(data):
        return "the MaxPool input may be negative, so a padded zero could become the maximum"
    return ""


def _pool_blocker(consumer: gs.Node) -> str:
    if consumer.op not in ("MaxPool", "AveragePool"):
        return ""
    if consumer.attrs.get("ceil_mode", 0):
        return "the pool uses ceil_mode=1, whose last window would see padding differently"
    if consumer.op == "MaxPool" and len(consumer.outputs) > 1 and consumer.outputs[1].outputs:
        return "the MaxPool Indices output is used and would index the unpadded tensor"
    return ""


def _rewrite(match: PadFold) -> None:
    target, data = match.target, match.pad.inputs[0]
    if match.transpose is not None:
        match.transpose.inputs[0] = data
        match.transpose.outputs[0].shape = None
    else:
        target.inputs[0] = data
    target.attrs["pads"] = list(match.begins) + list(match.ends)
    target.attrs.pop("auto_pad", None)
    if target.op == "AveragePool":
        target.attrs["count_include_pad"] = 1
    log.debug("folded %s into %s: pads %s", match.pad.name, target.name, target.attrs["pads"])


def _match_merge(inner: gs.Node, spec: PadSpec, outer: gs.Node, opset: int) -> PadMerge | str:
    """``Pad(Pad(x, p1), p2)`` → ``Pad(x, p1 + p2)``, or why not."""
    if outer.inputs[0] is not inner.outputs[0]:
        return "the Pad feeds the pads input of another Pad"
    other = read_pad(outer, opset)
    if isinstance(other, str):
        return f"the next Pad cannot be read: {other}"
    if other.mode != "constant" or other.value != spec.value or any(p < 0 for p in other.begins + other.ends):
        return "the next Pad has a different mode or value, or negative pads"
    return PadMerge(inner, outer, tuple(a + b for a, b in zip(spec.begins + spec.ends, other.begins + other.ends)))


def _merge(match: PadMerge) -> None:
    outer, inner = match.outer, match.inner
    outer.inputs[0] = inner.inputs[0]
    if "pads" in outer.attrs:  # opset < 11
        outer.attrs["pads"] = list(match.pads)
    else:
        name = f"{outer.name or outer.outputs[0].name}_pads_merged"
        outer.inputs[1] = gs.Constant(name, np.asarray(match.pads, np.int64))
        while len(outer.inputs) > 3:  # the merged pads are full-rank, so the axes input goes
            outer.inputs.pop()
    inner.outputs.clear()


PASS = FoldPad
