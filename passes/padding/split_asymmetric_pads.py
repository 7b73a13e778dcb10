"""split-asymmetric-pads (portable preset): asymmetric Conv/pool pads become one Pad + symmetric pads.

Some targets (older TensorRT, several NPU compilers) only take ``pads`` with begin == end. Before::

    x ─ Conv(pads=[0,0,1,1])                 x ─ MaxPool(kernel 3, pads=[0,0,1,1])

After (the symmetric part stays in the op, the remainder goes to the Pad)::

    x ─ Pad([0,0,0,0, 0,0,1,1], 0) ─ Conv(pads=[0,0,0,0])
    x ─ Pad([0,0,0,0, 0,0,1,1], -inf) ─ MaxPool(pads=[0,0,0,0])

MaxPool's implicit padding never wins a maximum, so its Pad uses ``-inf`` (float inputs only).
AveragePool splits only with ``count_include_pad=1``: with 0, explicit zeros would join the divisor.
Skipped with a reason: auto_pad still set, ceil_mode=1 pools, a used MaxPool Indices output, a
non-float MaxPool input, and ConvTranspose (its pads crop the output; splitting them needs a Slice).
This pass is the inverse of ``fold-pad``; in the portable preset fold-pad leaves asymmetric folds alone,
so the two never undo each other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.passes.infra.base import MatchingPass, PassContext
from onnxmend.passes.infra.conv_attrs import auto_pad, node_pads, spatial_rank
from onnxmend.passes.infra.naming import Namer

log = logging.getLogger(__name__)

CANDIDATES = ("Conv", "ConvTranspose", "MaxPool", "AveragePool")


@dataclass(frozen=True)
class AsymmetricPads:
    node: gs.Node
    begins: tuple[int, ...]
    ends: tuple[int, ...]


class SplitAsymmetricPads(MatchingPass):
    name = "split-asymmetric-pads"
    fixes = "Rewrites asymmetric Conv/pool pads as an explicit Pad plus symmetric pads, for targets that need that."
    preconditions = "Explicit pads (no auto_pad); AveragePool with count_include_pad=1; MaxPool on floats."

    def anchors(self, graph: gs.Graph) -> list[gs.Node]:
        return [n for n in graph.nodes if n.op in CANDIDATES]

    def match(self, graph: gs.Graph, node: gs.Node, ctx: PassContext) -> AsymmetricPads | str | None:
        if auto_pad(node) not in ("NOTSET", "VALID"):
            return f"auto_pad={auto_pad(node)} is set; resolve-auto-pad runs first"
        rank = spatial_rank(node)
        if rank is None or "pads" not in node.attrs:
            return None
        begins, ends = node_pads(node, rank)
        if begins == ends:
            return None
        return _blocker(node) or AsymmetricPads(node, tuple(begins), tuple(ends))

    def rewrite(self, graph: gs.Graph, match: AsymmetricPads, ctx: PassContext, names: Namer) -> None:
        _split(graph, match.node, list(match.begins), list(match.ends), ctx.opset)


def _blocker(node: gs.Node) -> str:
    if node.op == "ConvTranspose":
        return "ConvTranspose pads crop its output; splitting them would need a Slice, not a Pad"
    if node.op in ("MaxPool", "AveragePool") and node.attrs.get("ceil_mode", 0):
        return "the pool uses ceil_mode=1, whose last window would see an explicit Pad differently"
    if node.op == "AveragePool" and not node.attrs.get("count_include_pad", 0):
        return "AveragePool with count_include_pad=0 would count the explicit zeros in its divisor"
    if node.op == "MaxPool":
        if len(node.outputs) > 1 and node.outputs[1].outputs:
            return "the MaxPool Indices output is used and would index the padded tensor"
        dtype = node.inputs[0].dtype
        if dtype is None or not np.issubdtype(np.dtype(dtype), np.floating):
            return "the MaxPool input is not known to be floating point, so it cannot be padded with -inf"
    return ""


def _split(graph: gs.Graph, node: gs.Node, begins: list[int], ends: list[int], opset: int) -> None:
    sym = [min(b, e) for b, e in zip(begins, ends)]
    full = [0, 0] + [b - s for b, s in zip(begins, sym)] + [0, 0] + [e - s for e, s in zip(ends, sym)]
    data = node.inputs[0]
    dtype = np.dtype(data.dtype) if data.dtype is not None else np.dtype(np.float32)
    value = -np.inf if node.op == "MaxPool" else 0
    base = node.name or node.outputs[0].name
    padded = gs.Variable(f"{base}_asym_padded", dtype=data.dtype)
    if opset < 11:
        pad = gs.Node("Pad", f"{base}_asym_pad", {"pads": full, "value": float(value)}, [data], [padded])
    else:
        pads = gs.Constant(f"{base}_asym_pads", np.asarray(full, np.int64))
        fill = gs.Constant(f"{base}_asym_value", np.asarray(value, dtype))
        pad = gs.Node("Pad", f"{base}_asym_pad", {"mode": "constant"}, [data, pads, fill], [padded])
    node.inputs[0] = padded
    node.attrs["pads"] = sym + sym
    graph.nodes.append(pad)  # the manager's toposort puts it in front of the node
    log.debug("split %s: Pad %s, symmetric pads %s", node.name, full, sym)


PASS = SplitAsymmetricPads
