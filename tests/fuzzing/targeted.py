"""Mutations aimed at constructs that hang, exhaust memory or crash natively: huge, zero and negative
dims (graph inputs and the initializers that carry shapes), malformed Einsum equations, huge Loop trip
counts, If nodes with a missing or broken branch, empty graphs; and the registry of every class with
:func:`mutant`, which builds input ``index`` of a run."""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from tests.fuzzing import mutations as mu
from tests.fuzzing.seeds import Seed

EQUATIONS = ("", "->", "ij,jk", "ij,jk->ik->", "iij->i", "ab...,b->", "ij,jk->iz", "i,j,k->ijk", "IJ,JK->IK",
             "ij,jk->ikk", "...,...->...", "ij,jk->ik" + ",k" * 50, "é,é->é", "ij ,jk-> ik", "ij,jk->",
             "a" * 60 + ",jk->ik", "ij,,jk->ik", "0j,jk->ik", "ij,jk->ik\x00", "...ij,...jk->...ik")
TRIP_COUNTS = (2**62, 2**63 - 1, 2**31, 10**9, 10**7, -1, 0, -(2**63))


def extreme_dims(rng: np.random.Generator, built: mu.Built) -> None:
    """A graph input dim, or a shape-carrying initializer (Reshape/Expand/ConstantOfShape/Tile/Range/Pad/
    Resize/Slice inputs), set to a huge, zero or negative value."""
    g = built.model.graph
    shape_inits = _shape_initializers(built.model)
    if shape_inits and rng.random() < 0.5:
        tensor = _choice(rng, shape_inits)
        values = numpy_helper.to_array(tensor).copy()
        if values.size:
            flat = values.reshape(-1)
            pick = int(rng.integers(0, flat.size))
            big = _choice(rng, mu.ODD_DIMS) if values.dtype.kind in "iu" else _choice(rng, (1e9, 1e30, -1.0, 0.0, float("nan")))
            flat[pick] = np.asarray(big).astype(values.dtype) if values.dtype.kind != "i" else np.int64(big).astype(values.dtype)
            tensor.CopyFrom(numpy_helper.from_array(values, tensor.name))
            built.detail.append(f"shape initializer {tensor.name}[{pick}] = {big}")
            return
    inputs = [vi for vi in g.input if vi.type.tensor_type.shape.dim]
    if not inputs:
        return
    vi = _choice(rng, inputs)
    value = int(_choice(rng, (0, 0, -1, -5) + mu.HUGE_DIMS))
    axes = range(len(vi.type.tensor_type.shape.dim)) if rng.random() < 0.3 else [int(rng.integers(0, len(vi.type.tensor_type.shape.dim)))]
    for axis in axes:
        vi.type.tensor_type.shape.dim[axis].dim_value = value
    built.detail.append(f"input {vi.name} dims {list(axes)} = {value}")


_SHAPE_INPUTS = {"Reshape": (1,), "Expand": (1,), "ConstantOfShape": (0,), "Tile": (1,), "Range": (0, 1, 2),
                 "Pad": (1,), "Resize": (1, 2, 3), "Slice": (1, 2, 3, 4), "Upsample": (1,), "Loop": (0,), "TopK": (1,)}


def _shape_initializers(model: onnx.ModelProto) -> list[onnx.TensorProto]:
    inits = {t.name: t for t in model.graph.initializer}
    wanted = {n.input[i] for n in model.graph.node for i in _SHAPE_INPUTS.get(n.op_type, ()) if i < len(n.input)}
    return [inits[name] for name in sorted(wanted) if name in inits]


def einsum_equation(rng: np.random.Generator, built: mu.Built) -> None:
    nodes = [n for n in mu._nodes(built.model) if n.op_type == "Einsum"]
    if not nodes:
        return
    node = nodes[0]
    equation = _choice(rng, EQUATIONS) if rng.random() < 0.85 else built.bad_text(rng, 9)
    del node.attribute[:]
    if rng.random() > 0.05:
        node.attribute.append(helper.make_attribute("equation", equation))
    built.detail.append(f"Einsum equation = {equation!r}")


def loop_trip_count(rng: np.random.Generator, built: mu.Built) -> None:
    g = built.model.graph
    loops = [n for n in g.node if n.op_type == "Loop"]
    if not loops:
        return
    trip = int(_choice(rng, TRIP_COUNTS))
    for tensor in g.initializer:
        if tensor.name == loops[0].input[0]:
            tensor.CopyFrom(numpy_helper.from_array(np.asarray(trip, np.int64), tensor.name))
    extra = _choice(rng, ("", "", "no-scan", "cond-input", "no-trip"))
    if extra == "no-scan":  # no scan output: nothing accumulates, so a huge trip count is pure CPU time
        del loops[0].output[1:]
        del g.output[1:]
        body = loops[0].attribute[0].g
        del body.output[2:]
        del body.node[2:]
    elif extra == "cond-input":
        loops[0].input[1] = ""
    elif extra == "no-trip":
        loops[0].input[0] = ""
    built.detail.append(f"Loop trip count = {trip}" + (f", {extra}" if extra else ""))


def if_branch(rng: np.random.Generator, built: mu.Built) -> None:
    nodes = [n for n in mu._nodes(built.model) if n.op_type == "If"]
    if not nodes:
        return
    node = nodes[0]
    action = _choice(rng, ("no-then", "no-else", "no-branches", "empty-then", "extra-output", "wrong-type", "int-branch"))
    attrs = {a.name: a for a in node.attribute}
    if action in ("no-then", "no-else", "no-branches"):
        drop = {"no-then": ("then_branch",), "no-else": ("else_branch",), "no-branches": ("then_branch", "else_branch")}[action]
        kept = [a for a in node.attribute if a.name not in drop]
        del node.attribute[:]
        node.attribute.extend(kept)
    elif action == "empty-then" and "then_branch" in attrs:
        attrs["then_branch"].g.CopyFrom(helper.make_graph([], "empty", [], []))
    elif action == "extra-output" and "else_branch" in attrs:
        attrs["else_branch"].g.output.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, [1]))
    elif action == "wrong-type" and "then_branch" in attrs:
        attrs["then_branch"].g.output[0].type.tensor_type.elem_type = TensorProto.INT64
    elif "then_branch" in attrs:
        attrs["then_branch"].type = AttributeProto.INT
    built.detail.append(f"If: {action}")


def empty_graph(rng: np.random.Generator, built: mu.Built) -> None:
    g = built.model.graph
    action = _choice(rng, ("no-nodes", "no-outputs", "no-inputs", "dangling-output", "nodes-without-outputs", "only-inits"))
    if action == "no-nodes":
        del g.node[:]
    elif action == "no-outputs":
        del g.output[:]
    elif action == "no-inputs":
        del g.input[:]
    elif action == "dangling-output":
        g.output.append(helper.make_tensor_value_info("nowhere", TensorProto.FLOAT, [1]))
    elif action == "nodes-without-outputs":
        for node in g.node:
            del node.output[:]
    else:
        del g.node[:]
        del g.input[:]
        del g.output[:]
        if g.initializer:
            g.output.append(helper.make_tensor_value_info(g.initializer[0].name, g.initializer[0].data_type, None))
    built.detail.append(action)


def _choice(rng: np.random.Generator, items: Sequence):
    return items[int(rng.integers(0, len(items)))]


Mutator = Callable[[np.random.Generator, mu.Built], None]
TARGETED: dict[str, tuple[Mutator, str | None]] = {  # class -> (mutator, the crafted seed it needs, if any)
    "extreme-dims": (extreme_dims, None), "einsum": (einsum_equation, "crafted:einsum"),
    "loop": (loop_trip_count, "crafted:loop"), "if": (if_branch, "crafted:if"), "empty-graph": (empty_graph, None),
}
BYTE_CLASSES: dict[str, Callable[[np.random.Generator, Seed], tuple[bytes, str]]] = {
    "bit-flip": mu.bit_flip, "truncate": mu.truncate, "renamed-file": mu.renamed_file,
}
CLASSES = tuple(BYTE_CLASSES) + tuple(mu.FIELD_MUTATORS) + ("stacked",) + tuple(TARGETED)


def mutant(index: int, run_seed: int, seeds: Sequence[Seed], classes: Sequence[str] = CLASSES) -> mu.Mutant:
    """Input ``index`` of the run seeded ``run_seed``: its class round-robin, the rest from a generator of
    its own."""
    rng = np.random.default_rng([run_seed, index])
    kind = classes[index % len(classes)]
    by_name = {s.name: s for s in seeds}
    wanted = TARGETED[kind][1] if kind in TARGETED else None
    seed = by_name.get(wanted) if wanted else None
    seed = seed or seeds[int(rng.integers(0, len(seeds)))]
    if kind in BYTE_CLASSES:
        data, detail = BYTE_CLASSES[kind](rng, seed)
        return mu.Mutant(index, kind, seed.name, detail, data)
    built = mu.Built(copy.deepcopy(seed.model))
    if kind == "stacked":
        for _ in range(int(rng.integers(2, 5))):
            mu.FIELD_MUTATORS[_choice(rng, sorted(mu.FIELD_MUTATORS))](rng, built)
    elif kind in TARGETED:
        TARGETED[kind][0](rng, built)
    else:
        mu.FIELD_MUTATORS[kind](rng, built)
    return mu.Mutant(index, kind, seed.name, "; ".join(built.detail) or "no change", built.serialise())
