"""push-transposes: move Transposes down through layout-agnostic ops until they meet and cancel.

Before (tf2onnx, NHWC source)::

    x ─T(0,3,1,2)─ Conv ─T(0,2,3,1)─ Add(b[C]) ─ Relu ─T(0,3,1,2)─ Conv ─T(0,2,3,1)─ y

After::

    x ─T(0,3,1,2)─ Conv ─ Add(b[1,C,1,1]) ─ Relu ─ Conv ─T(0,2,3,1)─ y

Nodes are visited in topological order. A Transpose on a constant is folded into it, two consecutive
Transposes merge, identity Transposes disappear, and a Transpose whose consumer is in the handler table
(``passes/layout/transpose_handlers.py``) moves below that consumer: the node runs on the un-transposed tensor
with remapped axes/constants and its outputs get the Transpose instead. A push is taken only when it adds
no more Transposes than it removes (a Transpose counts as removed when all its consumers can take it), so
Transposes drift toward each other and toward the graph outputs, where ``io-layout`` can drop them.
A Transpose that only moves unit axes right after a constant-shape Reshape is merged into the Reshape.

Preconditions: Transposes carry a ``perm``. Non-goals: pushing Transposes upward (``io-layout`` starts
from the inputs instead), and layout-sensitive ops (Conv, pools, norms on the wrong axis), which stop a
Transpose; the reason is recorded per node.
"""

from __future__ import annotations

import logging
from typing import Iterable

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.core.graph import bypass, const_value, output_ids, producer, replace_uses
from onnxmend.passes.infra.base import Pass, PassContext, PassResult
from onnxmend.passes.infra.graph_ops import sweep, toposort
from onnxmend.passes.infra.naming import Namer
from onnxmend.passes.layout.perm import (
    Perm,
    compose,
    inverse,
    is_identity,
    is_reshape_like,
    perm_of,
    permute_broadcast_operand,
    transpose_count,
)
from onnxmend.passes.layout.push_rewrite import rewrite_node
from onnxmend.passes.layout.transpose_handlers import ALL, DATA_INPUTS, HANDLERS, Rewrite

log = logging.getLogger(__name__)

MAX_SWEEPS = 32


class PushTransposes(Pass):
    name = "push-transposes"
    fixes = "Moves Transposes through layout-agnostic ops, cancels inverse pairs and folds them into constants."
    preconditions = "Transposes have a perm attribute; shapes are needed only for Reshape merging."

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        result = PassResult()
        before = transpose_count(graph)
        if before == 0:
            return result  # nothing to push
        names = Namer(graph)
        skips: dict[str, str] = {}
        for _ in range(MAX_SWEEPS):
            skips = {}
            changed = _sweep(graph, names, ctx.opset, skips, _handlers(ctx))
            if not changed:
                break  # a sweep that changed nothing left the graph swept and sorted as it was
            sweep(graph)
            toposort(graph)
            result.changed += changed
        reshaped = _reshape_like_to_reshape(graph, names)
        if reshaped:
            sweep(graph)
            toposort(graph)
        result.changed += reshaped
        result.tidy = True
        after = transpose_count(graph)
        if after > before:
            result.changed, result.discard = 0, True
            result.skip("graph", f"pushing would leave {after} Transposes instead of {before}; graph left as it was")
            return result
        for node_name, reason in skips.items():
            result.skip(node_name, reason)
        if result.changed:
            result.notes.append(f"Transpose {after - before:+d} ({before}→{after})")
        return result


def _handlers(ctx: PassContext) -> dict:
    """The handler table; preparing for int8 (``keep_matmuls``), a MatMul may not become a 1x1 Conv."""
    return {**HANDLERS, "MatMul": _matmul_stays} if ctx.keep_matmuls else HANDLERS


def _matmul_stays(node: gs.Node, perm: Perm, opset: int) -> Rewrite | str:
    rewrite = HANDLERS["MatMul"](node, perm, opset)
    if isinstance(rewrite, Rewrite) and rewrite.op == "Conv":
        return "the graph is prepared for int8, where this MatMul must not become a 1x1 Conv"
    return rewrite


def _sweep(graph: gs.Graph, names: Namer, opset: int, skips: dict[str, str], handlers: dict) -> int:
    outputs = output_ids(graph)
    changed = 0
    for node in list(graph.nodes):
        if node.op != "Transpose" and node.op not in handlers or not _read(node, outputs):
            continue  # nothing to do with it, or dead: its consumers were moved away earlier in this sweep
        if node.op == "Transpose":
            changed += _simplify_transpose(graph, node, names, outputs)
        elif node.op in handlers:
            outcome = _push(graph, node, names, opset, outputs, handlers)
            if isinstance(outcome, str):
                skips[node.name or node.op] = outcome
            else:
                changed += outcome
    return changed


def _read(node: gs.Node, outputs: set[int]) -> bool:
    for out in node.outputs:
        if out.outputs or id(out) in outputs:
            return True
    return False


def _simplify_transpose(graph: gs.Graph, node: gs.Node, names: Namer, outputs: set[int]) -> int:
    """Fold into a constant, merge with the Transpose before it, drop it as identity, or merge into a Reshape."""
    source, target = node.inputs[0], node.outputs[0]
    values = const_value(source)
    if values is not None and id(target) not in outputs:
        folded = gs.Constant(names(f"{source.name}_transposed"), np.ascontiguousarray(np.transpose(values, perm_of(node))))
        replace_uses(target, folded)
        return 1
    before = producer(source)
    if before is not None and before.op == "Transpose":
        # transpose(transpose(x, q), p) == transpose(x, q∘p); an inverse pair cancels at once
        node.attrs["perm"] = list(compose(perm_of(before), perm_of(node)))
        node.inputs[0] = before.inputs[0]
        if not _read(before, outputs):
            before.inputs.clear()  # nothing reads the first any more: gone now, so that bypass may
            before.outputs.clear()  # hand a graph output to the producer it read
        if is_identity(perm_of(node)):
            bypass(node, outputs)  # (when it cannot go, the next sweep finds it as it does any identity)
        return 1
    if is_identity(perm_of(node)):
        return int(bypass(node, outputs))
    if before is not None and before.op == "Reshape":
        return _merge_into_reshape(before, node, names, outputs)
    return 0


def _reshape_like_to_reshape(graph: gs.Graph, names: Namer) -> int:
    """A Transpose left inside the graph that only moves unit axes of a static shape is a free Reshape."""
    inputs = {id(t) for t in graph.inputs}  # io-layout looks for the Transposes right after inputs
    changed = 0
    for node in graph.nodes:
        source = node.inputs[0] if node.op == "Transpose" and node.inputs else None
        if source is None or id(source) in inputs:
            continue
        shape = source.shape
        if shape is None or not is_reshape_like(perm_of(node), shape):
            continue
        target = np.array([shape[p] for p in perm_of(node)], dtype=np.int64)
        node.op, node.attrs = "Reshape", {}
        node.inputs.append(gs.Constant(names(f"{node.name or 'transpose'}_shape"), target))
        changed += 1
    return changed


def _merge_into_reshape(reshape: gs.Node, node: gs.Node, names: Namer, outputs: set[int]) -> int:
    """Reshape(x, s) ─T(p)─ is Reshape(x, s') when the Transpose only moves unit axes."""
    middle = node.inputs[0]
    shape = const_value(reshape.inputs[1])
    if shape is None or len(middle.outputs) != 1 or id(middle) in outputs:
        return 0
    dims = [int(d) for d in shape.reshape(-1)]
    if any(d <= 0 for d in dims) or not is_reshape_like(perm_of(node), dims):
        return 0
    new_shape = np.array([dims[p] for p in perm_of(node)], dtype=np.int64)
    reshape.inputs[1] = gs.Constant(names(f"{reshape.inputs[1].name}_transposed"), new_shape)
    reshape.outputs[0] = node.outputs[0]
    node.inputs.clear()
    node.outputs.clear()
    return 1


def _incoming(node: gs.Node) -> tuple[Perm, gs.Node] | None:
    """The perm and node of the first Transpose feeding one of the node's data inputs."""
    wanted = DATA_INPUTS.get(node.op, (0,))
    indices = range(len(node.inputs)) if ALL in wanted else wanted
    for i in indices:
        if i < len(node.inputs):
            maker = producer(node.inputs[i])
            if maker is not None and maker.op == "Transpose":
                return perm_of(maker), maker
    return None


def _push(graph: gs.Graph, node: gs.Node, names: Namer, opset: int, outputs: set[int], handlers: dict) -> int | str:
    found = _incoming(node)
    if found is None:
        return 0
    perm = found[0]
    rewrite = handlers[node.op](node, perm, opset)
    if isinstance(rewrite, str):
        return rewrite
    data = range(len(node.inputs)) if ALL in rewrite.data else rewrite.data
    plan = _plan_inputs(node, [i for i in data if i < len(node.inputs) and node.inputs[i].name], perm, rewrite, outputs)
    if isinstance(plan, str):
        return plan
    replacements, removed = plan
    added = sum(1 for out, q in zip(node.outputs, rewrite.out_perms) if _adds_transpose(out, q, outputs))
    if added > removed:
        return f"moving the Transpose below {node.op} would add {added} Transposes and remove {removed}"
    rewrite_node(graph, node, names, rewrite, replacements, outputs)
    return 1


def _plan_inputs(
    node: gs.Node, data: Iterable[int], perm: Perm, rewrite: Rewrite, outputs: set[int]
) -> tuple[dict[int, gs.Tensor | np.ndarray], int] | str:
    """What each data input becomes on the un-transposed side, and how many Transposes die with it."""
    replacements: dict[int, gs.Tensor | np.ndarray] = {}
    dying: set[int] = set()
    for i in data:
        tensor = node.inputs[i]
        maker = producer(tensor)
        if maker is not None and maker.op == "Transpose":
            if perm_of(maker) != perm:
                return f"inputs of {node.op} are transposed with different perms"
            replacements[i] = maker.inputs[0]
            if _will_die(maker, outputs):
                dying.add(id(maker))
            continue
        values = const_value(tensor)
        if values is not None:
            moved = _move_constant(values, perm, rewrite.broadcast)
            if moved is None:
                return f"constant {tensor.name} has more axes than the transposed tensor"
            if moved is not values:
                replacements[i] = moved
            continue
        if rewrite.broadcast and _layout_free(tensor, len(perm)):
            continue
        return f"input {tensor.name} of {node.op} is neither constant nor transposed the same way"
    return replacements, len(dying)


def _adds_transpose(out: gs.Tensor, perm: Perm, outputs: set[int]) -> bool:
    """A Transpose put after ``out`` costs one, unless every consumer is a Transpose it merges into."""
    if is_identity(perm):
        return False
    if id(out) in outputs:
        return True
    return bool(out.outputs) and not all(c.op == "Transpose" for c in out.outputs)


def _will_die(transpose: gs.Node, outputs: set[int]) -> bool:
    """A Transpose goes away once every consumer takes it, which only table ops (or Transposes) can."""
    target = transpose.outputs[0]
    return id(target) not in outputs and all(c.op in HANDLERS or c.op == "Transpose" for c in target.outputs)


def _move_constant(values: np.ndarray, perm: Perm, broadcast: bool) -> np.ndarray | None:
    if broadcast:
        return permute_broadcast_operand(values, perm)
    if values.ndim != len(perm):
        return None
    return np.ascontiguousarray(np.transpose(values, inverse(perm)))


def _layout_free(tensor: gs.Tensor, rank: int) -> bool:
    shape = tensor.shape
    return shape is not None and len(shape) <= rank and all(d == 1 for d in shape)


PASS = PushTransposes
