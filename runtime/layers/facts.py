"""The attributes of ONNX nodes as the facts a source layer's config is compared with, and their diff.

:func:`onnx_facts` reads what decides a node's numbers — ``pads``, ``strides``, ``dilations``, ``group``,
``kernel`` (from the weight), ``epsilon``, ``momentum``, ``num_groups`` and the normalized ``axes`` as
letters (through the tensor's layout relative to the source) — plus what a rewrite absorbed into it (a
folded BatchNorm's epsilon and momentum). :func:`fact_diff` lists the facts two sides both state and
disagree on: ``pads [1, 1, 1, 1] vs [0, 0, 1, 1]``, ``epsilon 0.001 vs 1e-05``.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import onnx
from onnx import numpy_helper

COMPARED = ("kernel", "strides", "dilations", "pads", "group", "epsilon", "momentum", "num_groups", "axes",
            "min", "max", "negative_slope")
_NORMS = ("LayerNormalization", "GroupNormalization", "InstanceNormalization", "BatchNormalization")


class NodeFacts:
    """Facts of the nodes of one model: attribute values, constant inputs, absorbed records."""

    def __init__(self, model: onnx.ModelProto, absorbed: Sequence[list[dict]] = ()) -> None:
        self.nodes = {n.name or n.output[0]: n for n in model.graph.node if n.output}
        self.absorbed = {(n.name or n.output[0]): a for n, a in zip(model.graph.node, absorbed) if n.output}
        self.inits = {t.name: t for t in model.graph.initializer}
        self.constants = {n.output[0]: n for n in model.graph.node if n.op_type == "Constant" and n.output}

    def const(self, name: str) -> np.ndarray | None:
        if name in self.inits:
            return numpy_helper.to_array(self.inits[name])
        node = self.constants.get(name)
        if node is not None:
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
        return None

    def weight(self, name: str) -> np.ndarray | None:
        node = self.nodes.get(name)
        if node is None or len(node.input) < 2:
            return None
        return self.const(node.input[1])

    def of(self, name: str, letters: str = "") -> dict[str, object]:
        """The facts of node ``name``; ``letters``: its input's axis letters (e.g. "NCHW")."""
        node = self.nodes.get(name)
        if node is None:
            return {}
        facts: dict[str, object] = {"op": node.op_type}
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        for key in ("pads", "strides", "dilations", "group", "epsilon", "momentum", "num_groups", "auto_pad"):
            if key in attrs:
                facts[key] = _plain(attrs[key])
        if node.op_type in ("Conv", "ConvTranspose"):
            weight = self.weight(name)
            if weight is not None:
                facts["kernel"] = [int(d) for d in weight.shape[2:]]
            facts.setdefault("group", 1)
            rank = len(facts.get("kernel", [0, 0]))  # type: ignore[arg-type]
            facts.setdefault("strides", [1] * rank)
            facts.setdefault("dilations", [1] * rank)
            if facts.get("auto_pad", "NOTSET") in ("NOTSET", b"NOTSET"):
                facts.setdefault("pads", [0] * (2 * rank))
        facts.update(self._norm_axes(node, attrs, letters))
        if node.op_type == "Clip":
            for key, position in (("min", 1), ("max", 2)):
                value = self.const(node.input[position]) if len(node.input) > position and node.input[position] else None
                if value is not None:
                    facts[key] = float(np.ravel(value)[0])
        for record in self.absorbed.get(name, []):
            for key in ("epsilon", "momentum"):
                if key in record:
                    facts.setdefault(key, record[key])
            facts.setdefault("absorbed", []).append(  # type: ignore[union-attr]
                {k: v for k, v in record.items() if k != "name"})
        return facts

    def _norm_axes(self, node: onnx.NodeProto, attrs: Mapping[str, object], letters: str) -> dict[str, object]:
        letters = letters or "NCHW"
        rank = len(letters)
        if node.op_type == "LayerNormalization":
            axis = int(attrs.get("axis", -1)) % rank  # type: ignore[call-overload]
            return {"axes": _letters(range(axis, rank), letters)}
        if node.op_type == "GroupNormalization":
            return {"axes": _letters(range(1, rank), letters)}
        if node.op_type == "InstanceNormalization":
            return {"axes": _letters(range(2, rank), letters)}
        if node.op_type == "BatchNormalization":
            return {"axes": _letters([1], letters)}
        if node.op_type.startswith("Reduce"):
            axes = attrs.get("axes")
            if axes is None and len(node.input) > 1 and node.input[1]:
                value = self.const(node.input[1])
                axes = None if value is None else [int(a) for a in np.ravel(value)]
            if axes is not None:
                return {"axes": _letters([int(a) % rank for a in axes], letters)}  # type: ignore[union-attr]
        return {}


def merged(facts: Sequence[Mapping[str, object]]) -> dict[str, object]:
    """One fact set for a group (a Conv and its folded BN): the first value of each key wins, except
    ``pads``, which add up (a ZeroPadding2D folded into the Conv after it)."""
    out: dict[str, object] = {}
    for item in facts:
        for key, value in item.items():
            previous = out.get(key)
            if key == "pads" and isinstance(previous, list) and isinstance(value, list) and len(previous) == len(value):
                out[key] = [a + b for a, b in zip(previous, value)]
            else:
                out.setdefault(key, value)
    return out


def fact_diff(a: Mapping[str, object], b: Mapping[str, object]) -> dict[str, tuple[object, object]]:
    """Facts both sides state and disagree on (floats compared to 1e-6 relative)."""
    found = {}
    for key in COMPARED:
        if key in a and key in b and a[key] is not None and b[key] is not None and not _same(a[key], b[key]):
            found[key] = (a[key], b[key])
    return found


def _same(x: object, y: object) -> bool:
    if isinstance(x, (list, tuple)) and isinstance(y, (list, tuple)):
        return len(x) == len(y) and all(_same(i, j) for i, j in zip(x, y))
    if isinstance(x, (int, float)) and isinstance(y, (int, float)):
        return abs(float(x) - float(y)) <= 1e-6 * max(abs(float(x)), abs(float(y)), 1e-30)
    return x == y


def _letters(axes: object, letters: str) -> list[str]:
    return sorted({letters[a] for a in axes if 0 <= a < len(letters)}, key="NCDHWL".find)  # type: ignore[union-attr]


def _plain(value: object) -> object:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return float(np.float32(value).item()) if abs(value) > 0 else 0.0
    return value
