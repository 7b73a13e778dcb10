"""Fuse decomposed GELU into one ``Gelu`` node (opset >= 20; onnxruntime's contrib Gelu below it).

Before (the exact form; ``x/√2`` as Div by 1.4142 or Mul by 0.7071, the 0.5 first or last)::

    x ─Div √2─ Erf ─Add 1─┐
    x ───────────────────Mul─ Mul 0.5 ─ y        also Mul(Mul(x, 0.5), ·) and Mul(·, Mul(0.5, ·))

    x ─Neg─Mul 0.7071─ Erf ─Sub(1, ·)─ ...       Keras: 0.5·x·erfc(−x/√2), Erfc written as 1 − Erf

Before (the tanh form)::

    y = 0.5 · x · (1 + tanh(√(2/π) · (x + 0.044715 · x³)))     x³ as Pow(x, 3), Mul(x, Mul(x, x))

After, at opset >= 20 (any preset)::

    x ─Gelu(approximate="none" | "tanh")─ y

After, below opset 20 with the ``fix`` preset (it targets onnxruntime)::

    x ─com.microsoft::Gelu─ y          the exact form
    x ─com.microsoft::FastGelu─ y      the tanh form: 0.5·x·(1 + tanh(0.797885·x + 0.035677·x³))

and the model imports the ``com.microsoft`` opset, version 1. onnxruntime 1.31 fuses only the
``Div(x, √2)`` spelling into its Gelu by itself (ORT_ENABLE_ALL); ``Mul(x, 1/√2)`` and Keras' Erfc
spelling (Neg/Mul/Erf/Sub) stay decomposed, and fusing them here made keras:ConvNeXtTiny 1.11–1.16×
faster on CPU with identical outputs (bench/convnext_fix.py, "fix w/o fuse-gelu").

A scaled GELU, ``k·x·(1 + erf(x/√2))`` with any constant k (the 0.5 moved elsewhere, e.g. into the next
Conv's weights by onnxsim's ``fuse_mul_into_conv``, or never written), becomes ``Gelu`` then ``Mul(2k)``:
two nodes for at least five, and fold-conv-input-affine can then move the ``Mul`` into a following Conv.
In the presets fuse-gelu runs before the affine folds, so the 0.5 of a plain GELU is not moved away first.

Not handled: other presets below opset 20 (``portable`` promises no contrib ops, so the chain is left
with the reason recorded); a contrib op for an x that is neither float32 nor float16 (onnxruntime's CPU
has no double ``Gelu`` kernel).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from dataclasses import dataclass

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from onnxmend.core.graph import producer
from onnxmend.passes.infra.base import MatchingPass, PassContext, PassResult
from onnxmend.passes.infra.match import (
    NoMatch,
    close,
    graph_opset,
    other_input,
    private,
    require,
    require_private,
    scalar,
    sole_consumer,
    tensor_dtype,
)
from onnxmend.passes.infra.naming import Namer

log = logging.getLogger(__name__)

MIN_OPSET = 20
CONTRIB_DOMAIN = "com.microsoft"
CONTRIB_VERSION = 1
CONTRIB_OPS = {"none": "Gelu", "tanh": "FastGelu"}  # onnxruntime contrib ops, same math as Gelu(approximate)
CONTRIB_DTYPES = (np.dtype(np.float32), np.dtype(np.float16))
SQRT2 = math.sqrt(2.0)
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


@dataclass(frozen=True)
class GeluOp:
    """The node a match becomes: ``op`` in ``domain`` ("" is the ONNX domain) with ``attrs``."""

    op: str
    domain: str
    attrs: tuple[tuple[str, str], ...] = ()

    def label(self) -> str:
        return f"{self.domain}::{self.op}" if self.domain else self.op


@dataclass(frozen=True)
class GeluMatch:
    x: gs.Tensor
    approximate: str
    output: gs.Variable
    nodes: tuple[gs.Node, ...]
    scale: float = 1.0  # a scaled GELU: output = scale · GELU(x), written as Gelu then Mul


def match_erf_gelu(graph: gs.Graph, erf: gs.Node) -> GeluMatch:
    """0.5·x·(1 + erf(x/√2)), or 0.5·x·(1 − erf(−x/√2))."""
    scaled = erf.inputs[0]
    div = producer(scaled, "Div", "Mul")
    require(div is not None, f"{erf.name} does not read x/√2")
    if div.op == "Div":
        src, ok = div.inputs[0], close(scalar(div.inputs[1]), SQRT2)
    else:
        src = next((t for t in div.inputs if scalar(t) is None), div.inputs[0])
        ok = close(scalar(other_input(div, src)), 1.0 / SQRT2)
    require(ok, f"{div.name} does not divide by √2")
    require_private(graph, scaled, [erf])
    nodes = [div, erf]
    neg = producer(src, "Neg")
    x = src if neg is None else neg.inputs[0]
    if neg is not None:
        require_private(graph, src, [div])
        nodes.append(neg)
    one = sole_consumer(graph, erf.outputs[0], "Sub" if neg is not None else "Add")
    if neg is not None:
        require(one.inputs[1] is erf.outputs[0] and close(scalar(one.inputs[0]), 1.0), f"{one.name} is not 1 − erf")
    else:
        require(close(scalar(other_input(one, erf.outputs[0])), 1.0), f"{one.name} does not add 1")
    return _times_half_x(graph, one.outputs[0], x, "none", nodes + [one])


def match_tanh_gelu(graph: gs.Graph, tanh: gs.Node) -> GeluMatch:
    """0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))."""
    scaled = tanh.inputs[0]
    mul = producer(scaled, "Mul")
    require(mul is not None and private(graph, scaled, [tanh]), f"{tanh.name} does not read √(2/π)·(…)")
    inner = next((t for t in mul.inputs if scalar(t) is None), mul.inputs[0])
    require(close(scalar(other_input(mul, inner)), SQRT_2_OVER_PI), f"{mul.name} does not scale by √(2/π)")
    add = producer(inner, "Add")
    require(add is not None and private(graph, inner, [mul]), f"{mul.name} does not read x + 0.044715·x³")
    x, cubic_nodes = _x_plus_cubic(graph, add)
    one = sole_consumer(graph, tanh.outputs[0], "Add")
    require(close(scalar(other_input(one, tanh.outputs[0])), 1.0), f"{one.name} does not add 1")
    return _times_half_x(graph, one.outputs[0], x, "tanh", [mul, add, *cubic_nodes, tanh, one])


def _x_plus_cubic(graph: gs.Graph, add: gs.Node) -> tuple[gs.Tensor, list[gs.Node]]:
    a, b = add.inputs
    for x, term in ((a, b), (b, a)):
        coeff = producer(term, "Mul")
        if coeff is None or not private(graph, term, [add]):
            continue
        cube = next((t for t in coeff.inputs if scalar(t) is None), None)
        if cube is None or not close(scalar(other_input(coeff, cube)), 0.044715):
            continue
        cube_nodes = _cube_of(graph, cube, x)
        if cube_nodes:
            return x, [coeff, *cube_nodes]
    raise NoMatch(f"{add.name} is not x + 0.044715·x³")


def _cube_of(graph: gs.Graph, cube: gs.Tensor, x: gs.Tensor) -> list[gs.Node]:
    """Nodes computing x³ as Pow(x, 3), Mul(x, Mul(x, x)) or Mul(Mul(x, x), x); empty when not."""
    node = producer(cube, "Pow", "Mul")
    if node is None:
        return []
    if node.op == "Pow":
        return [node] if node.inputs[0] is x and scalar(node.inputs[1]) == 3.0 else []
    square = next((t for t in node.inputs if t is not x), None)
    sq = producer(square, "Mul") if square is not None else None
    if sq is None or not any(t is x for t in node.inputs) or not private(graph, square, [node]):
        return []
    return [node, sq] if all(t is x for t in sq.inputs) else []


def _times_half_x(graph: gs.Graph, term: gs.Variable, x: gs.Tensor, approximate: str, nodes: list[gs.Node]) -> GeluMatch:
    """Follow the Muls that multiply ``term`` by x and by constants, in any grouping. Their constants'
    product k gives k·x·term = 2k·GELU(x): k = 0.5 is GELU itself, any other k a scaled GELU."""
    factor, have_x, current = 1.0, False, term
    while not (have_x and close(factor, 0.5)):
        require(len(nodes) < 16, "no Mul by x and 0.5 after the erf/tanh term")
        mul = _sole_mul(graph, current)
        if mul is None:
            require(have_x, f"{current.name} is the term times {factor:g}, not times x")
            break  # a scaled GELU ends here
        other = other_input(mul, current)
        value = scalar(other)
        if value is not None:
            factor *= value
        elif other is x and not have_x:
            have_x = True
        elif have_x:
            break  # a Mul by another tensor after the GELU is not part of it
        else:
            half = producer(other, "Mul")
            require(half is not None and private(graph, other, [mul]), f"{mul.name} does not multiply by x or 0.5")
            require(any(t is x for t in half.inputs), f"{half.name} does not multiply x")
            value = scalar(other_input(half, x))
            require(value is not None, f"{half.name} does not multiply x by a constant")
            factor, have_x = factor * value, True
            nodes.append(half)
        nodes.append(mul)
        current = mul.outputs[0]
    require(factor != 0.0, f"{current.name} is the term times 0")
    return GeluMatch(x, approximate, current, tuple(nodes), 1.0 if close(factor, 0.5) else factor / 0.5)


def _sole_mul(graph: gs.Graph, tensor: gs.Variable) -> gs.Node | None:
    """The one Mul reading ``tensor``, when nothing else reads it."""
    try:
        return sole_consumer(graph, tensor, "Mul")
    except NoMatch:
        return None


@dataclass(frozen=True)
class GeluFusion:
    match: GeluMatch
    target: GeluOp

    @property
    def note(self) -> str:
        return self.target.label() + (" with a Mul (a scaled GELU)" if self.match.scale != 1.0 else "")


class FuseGelu(MatchingPass):
    name = "fuse-gelu"
    fixes = "Replaces decomposed GELU (Erf and tanh forms, Keras' Erfc form) by one Gelu node."
    preconditions = "opset >= 20, or the fix preset below it (onnxruntime's com.microsoft Gelu/FastGelu)."

    def anchors(self, graph: gs.Graph) -> list[gs.Node]:
        return [n for n in graph.nodes if n.op in ("Erf", "Tanh")]

    def match(self, graph: gs.Graph, node: gs.Node, ctx: PassContext) -> GeluFusion | str:
        try:
            match = match_erf_gelu(graph, node) if node.op == "Erf" else match_tanh_gelu(graph, node)
            return GeluFusion(match, gelu_op(match, graph_opset(graph, ctx.opset), ctx.preset))
        except NoMatch as exc:
            return str(exc)

    def rewrite(self, graph: gs.Graph, fusion: GeluFusion, ctx: PassContext, names: Namer) -> None:
        _rewrite(graph, fusion.match, fusion.target, names)
        if fusion.target.domain == CONTRIB_DOMAIN:
            _import_domain(graph, CONTRIB_DOMAIN, CONTRIB_VERSION)

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        result = super().apply(graph, ctx)
        opset = graph_opset(graph, ctx.opset)
        emitted = Counter(result.notes)  # one label per fused GELU
        result.notes = [f"emitted {count} {label} (graph opset {opset})" for label, count in sorted(emitted.items())]
        return result


def gelu_op(match: GeluMatch, opset: int, preset: str) -> GeluOp:
    """The standard Gelu from opset 20; below it onnxruntime's contrib op, for the fix preset only."""
    if opset >= MIN_OPSET:
        return GeluOp("Gelu", "", (("approximate", match.approximate),))
    contrib = f"{CONTRIB_DOMAIN} {CONTRIB_OPS[match.approximate]}"
    require(preset == "fix", f"Gelu needs opset {MIN_OPSET}; the graph is at {opset} and the {preset} preset "
            f"emits no {CONTRIB_DOMAIN} contrib ops")
    dtype = tensor_dtype(match.x)
    require(dtype is not None and dtype in CONTRIB_DTYPES,
            f"{contrib} is only emitted for float32/float16; {match.x.name} is {dtype or 'untyped'}")
    return GeluOp(CONTRIB_OPS[match.approximate], CONTRIB_DOMAIN)


def _rewrite(graph: gs.Graph, match: GeluMatch, target: GeluOp, namer: Namer) -> None:
    out = match.output
    for node in match.nodes:
        node.inputs.clear()
        node.outputs.clear()
    gelu_out = out
    if match.scale != 1.0:
        gelu_out = gs.Variable(namer(f"{out.name}_unscaled"), dtype=out.dtype, shape=out.shape)
        scale = gs.Constant(namer(f"{out.name}_scale"), np.asarray(match.scale, dtype=tensor_dtype(match.x) or np.float32))
        graph.nodes.append(gs.Node("Mul", namer(f"{out.name}_scaled"), inputs=[gelu_out, scale], outputs=[out]))
    gelu = gs.Node(target.op, namer(f"{out.name}_gelu"), attrs=dict(target.attrs), inputs=[match.x], outputs=[gelu_out])
    gelu.domain = target.domain or None
    graph.nodes.append(gelu)


def _import_domain(graph: gs.Graph, domain: str, version: int) -> None:
    """Make the exported model import ``domain`` (graphsurgeon would default it to version 1 silently)."""
    imports = list(graph.import_domains or [onnx.helper.make_opsetid("", graph.opset)])
    if not any(o.domain == domain for o in imports):
        imports.append(onnx.helper.make_opsetid(domain, version))
    graph.import_domains = imports


PASS = FuseGelu
