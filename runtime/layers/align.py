"""Two ONNX graphs of one architecture lined up by structure, for ports whose names mean nothing to each other.

Each graph becomes a sequence of tokens in node order: a weighted op is its family and its weight's
shape in ONNX terms (``conv [16, 8, 5, 5]``, ``dense [96, 384]`` with Gemm's ``transB`` undone,
``norm [96]`` — channels, the first dim of the scale — for any of LayerNormalization, GroupNormalization,
InstanceNormalization and BatchNormalization); any other op is its type (``Relu``, ``Add``, ``GlobalAveragePool``); layout and shape plumbing (Transpose, Reshape,
Squeeze, Cast, Identity, Constant, …) is left out, since ports differ there without meaning to. The
longest matching runs of the two sequences (:class:`difflib.SequenceMatcher`) give the aligned pairs; a
norm spelled as LayerNormalization on one side and GroupNormalization on the other still aligns (same
family and channels), which is what lets the attribute diff show that their axes differ. What does not
align is listed, with coverage per side (aligned weighted ops / weighted ops).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

import onnx

PLUMBING = frozenset({
    "Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Cast", "Shape", "Gather",
    "Constant", "ConstantOfShape", "Concat", "Slice", "Expand", "Range", "Dropout",
})
_NORMS = {"LayerNormalization", "GroupNormalization", "InstanceNormalization", "BatchNormalization"}


@dataclass(frozen=True)
class Token:
    node: str  # node name (or its first output when unnamed)
    output: str
    key: tuple
    weighted: bool

    @property
    def text(self) -> str:
        return self.key[0] if len(self.key) == 1 else f"{self.key[0]} {list(self.key[1])}"


@dataclass
class Alignment:
    pairs: list[tuple[Token, Token]]
    unaligned_a: list[Token]
    unaligned_b: list[Token]
    weighted_a: int
    weighted_b: int

    @property
    def coverage_a(self) -> float:
        aligned = sum(1 for a, _ in self.pairs if a.weighted)
        return aligned / self.weighted_a if self.weighted_a else 1.0

    @property
    def coverage_b(self) -> float:
        aligned = sum(1 for _, b in self.pairs if b.weighted)
        return aligned / self.weighted_b if self.weighted_b else 1.0

    def to_json(self) -> dict[str, object]:
        return {
            "pairs": [[a.node, b.node] for a, b in self.pairs],
            "unaligned_a": [f"{t.node} ({t.text})" for t in self.unaligned_a],
            "unaligned_b": [f"{t.node} ({t.text})" for t in self.unaligned_b],
            "coverage_a": round(self.coverage_a, 4), "coverage_b": round(self.coverage_b, 4),
        }


def tokens(model: onnx.ModelProto) -> list[Token]:
    """The significant ops of ``model`` in node order."""
    shapes = {t.name: tuple(int(d) for d in t.dims) for t in model.graph.initializer}
    shapes.update(_constant_shapes(model))
    found = []
    for node in model.graph.node:
        if node.op_type in PLUMBING or not node.output:
            continue
        key, weighted = _key(node, shapes)
        found.append(Token(node.name or node.output[0], node.output[0], key, weighted))
    return found


def align(a: onnx.ModelProto, b: onnx.ModelProto) -> Alignment:
    ta, tb = tokens(a), tokens(b)
    matcher = difflib.SequenceMatcher(None, [t.key for t in ta], [t.key for t in tb], autojunk=False)
    pairs, used_a, used_b = [], set(), set()
    for block in matcher.get_matching_blocks():
        for k in range(block.size):
            pairs.append((ta[block.a + k], tb[block.b + k]))
            used_a.add(block.a + k)
            used_b.add(block.b + k)
    return Alignment(pairs, [t for i, t in enumerate(ta) if i not in used_a], [t for i, t in enumerate(tb) if i not in used_b],
                     sum(t.weighted for t in ta), sum(t.weighted for t in tb))


def _key(node: onnx.NodeProto, shapes: dict[str, tuple[int, ...]]) -> tuple[tuple, bool]:
    weight = shapes.get(node.input[1]) if len(node.input) > 1 else None
    op = node.op_type
    if op in ("Conv", "ConvTranspose") and weight is not None:
        return (op.lower(), weight), True
    if op in _NORMS and weight is not None:  # by channels: a (C, H, W) affine is still C channels
        return ("norm", weight[:1]), True
    if op in ("Gemm", "MatMul") and weight is not None and len(weight) == 2:
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return ("dense", tuple(reversed(weight)) if trans_b else weight), True
    return (op,), False


def _constant_shapes(model: onnx.ModelProto) -> dict[str, tuple[int, ...]]:
    found = {}
    for node in model.graph.node:
        if node.op_type == "Constant" and node.output:
            for attr in node.attribute:
                if attr.name == "value":
                    found[node.output[0]] = tuple(int(d) for d in attr.t.dims)
    return found
