"""How push-transposes rewrites one node once a push is planned: inputs, attributes, a Transpose after.

Before (``T`` feeds only ``Relu``)::

    x ─T(p)─ t ─ Relu ─ y ─ …

After (the same ``T`` node, moved; ``t`` is now Relu's un-transposed output)::

    x ─ Relu ─ t ─T(p)─ y ─ …

A Transpose that still has other readers stays where it is and a new one is made after the node; the
moved one is named, and answers for the layers of what it writes, as a new one would.
"""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.core.graph import producer
from onnxmend.passes.infra.naming import Namer
from onnxmend.passes.infra.provenance import forget
from onnxmend.passes.layout.perm import Perm, inverse, is_identity
from onnxmend.passes.layout.transpose_handlers import Rewrite


def rewrite_node(graph: gs.Graph, node: gs.Node, names: Namer, rewrite: Rewrite,
                 replacements: dict[int, gs.Tensor | np.ndarray], outputs: set[int]) -> None:
    """Rewire ``node`` to the un-transposed inputs (``replacements``: a tensor, or a constant's moved values),
    apply ``rewrite`` and put a Transpose after each output whose perm is not the identity."""
    base = node.name or node.op
    makers = [producer(node.inputs[i]) for i, value in replacements.items() if isinstance(value, gs.Tensor)]
    for i, value in replacements.items():
        if isinstance(value, np.ndarray):
            value = gs.Constant(names(f"{node.inputs[i].name}_{base}_permuted"), value)
        node.inputs[i] = value
    for i, values in rewrite.aux.items():
        while len(node.inputs) <= i:
            node.inputs.append(gs.Variable.empty())
        old = node.inputs[i].name or "axes"
        node.inputs[i] = gs.Constant(names(f"{old}_{base}_permuted"), values)
    node.attrs.update(rewrite.attrs)
    if rewrite.op:
        node.op = rewrite.op
    unique = list({id(m): m for m in makers}.values())  # (graphsurgeon nodes are not hashable)
    freed = [m for m in unique if not m.outputs[0].outputs and id(m.outputs[0]) not in outputs]
    for k, q in enumerate(rewrite.out_perms):
        out = node.outputs[k]
        if is_identity(q):
            continue
        shape = None if out.shape is None else [out.shape[j] for j in inverse(q)]
        inner_name = names(f"{out.name}_untransposed")
        transpose_name = names(f"{base}_transpose_out{k}")
        if freed:
            _move_below(freed.pop(), node, k, q, inner_name, transpose_name, shape)
            continue
        inner = gs.Variable(inner_name, dtype=out.dtype, shape=shape)
        node.outputs[k] = inner
        graph.nodes.append(gs.Node("Transpose", transpose_name, {"perm": list(q)}, [inner], [out]))


def _move_below(transpose: gs.Node, node: gs.Node, k: int, perm: Perm, inner_name: str, name: str,
                shape: list | None) -> None:
    """The Transpose that fed ``node`` (no reader left) becomes the one after its output ``k``: its output
    tensor is ``node``'s new un-transposed output, so a Transpose pushed down a chain is one node moving,
    not one made and one swept per op. Named and answering for its place as a new node would."""
    middle, out = transpose.outputs[0], node.outputs[k]
    middle.name, middle.dtype, middle.shape = inner_name, out.dtype, shape
    node.outputs[k] = middle
    transpose.outputs[0] = out
    transpose.inputs[0] = middle
    transpose.name, transpose.attrs = name, {"perm": list(perm)}
    forget(transpose)
