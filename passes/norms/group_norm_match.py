"""Matching a grouped normalization: ``Reshape [N, G, -1] → InstanceNormalization | LayerNormalization(-1)
→ Reshape back``, as torch's exporters write GroupNorm. fuse-group-norm fuses it (G > 1) and
fuse-layer-norm takes the one-group case.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.core.graph import const_value, producer, rank_of
from onnxmend.passes.infra.match import require, sole_consumer


@dataclass(frozen=True)
class Grouped:
    """``Reshape → per-group normalization → Reshape back``; ``output`` has the shape of ``x``."""

    x: gs.Tensor
    groups: int
    epsilon: float
    output: gs.Variable
    nodes: tuple[gs.Node, ...]


def match_grouped(graph: gs.Graph, reshape: gs.Node) -> Grouped:
    """Match the grouped normalization that starts at ``reshape`` (x → [N, G, -1])."""
    x = reshape.inputs[0]
    target = const_value(reshape.inputs[1])
    require(target is not None and target.size == 3, f"{reshape.name} does not reshape to a constant [N, G, -1]")
    rank = rank_of(x)
    require(rank is not None and rank >= 3, f"rank of {x.name} is unknown or below 3")
    groups = int(target[1])
    require(int(target[0]) in (0, x.shape[0]) and groups > 0, f"{reshape.name} does not keep the batch axis first")
    channels = x.shape[1]
    require(isinstance(channels, int) and channels % groups == 0, f"channels of {x.name} are not static or not divisible by {groups}")
    require(int(target[2]) == -1 or _known_size(x, int(target[2]) * groups), f"{reshape.name} does not flatten whole groups")
    grouped = reshape.outputs[0]
    inner = sole_consumer(graph, grouped, "InstanceNormalization", "LayerNormalization")
    epsilon = _inner_epsilon(inner)
    normalized = inner.outputs[0]
    back = sole_consumer(graph, normalized, "Reshape")
    require(_restores_shape(back, x), f"{back.name} does not reshape back to the shape of {x.name}")
    return Grouped(x, groups, epsilon, back.outputs[0], (reshape, inner, back))


def _known_size(x: gs.Tensor, flat: int) -> bool:
    dims = x.shape[1:]
    return all(isinstance(d, int) for d in dims) and int(np.prod(dims)) == flat


def _inner_epsilon(inner: gs.Node) -> float:
    """Epsilon of an InstanceNormalization / LayerNormalization(axis=-1) that has a unit affine."""
    if inner.op == "LayerNormalization":
        require(int(inner.attrs.get("axis", -1)) in (-1, 2), f"{inner.name} does not normalize the last axis")
        require(all(not t.outputs for t in inner.outputs[1:]), f"{inner.name} has its Mean/InvStdDev outputs in use")
    scale = const_value(inner.inputs[1]) if len(inner.inputs) > 1 else None
    bias = const_value(inner.inputs[2]) if len(inner.inputs) > 2 and inner.inputs[2].name else np.zeros(1)
    require(scale is not None and bool(np.all(scale == 1)), f"{inner.name} has a scale other than ones")
    require(bias is not None and bool(np.all(bias == 0)), f"{inner.name} has a bias other than zeros")
    return float(inner.attrs.get("epsilon", 1e-5))


def _restores_shape(back: gs.Node, x: gs.Tensor) -> bool:
    shape_node = producer(back.inputs[1], "Shape")
    if shape_node is not None:
        return shape_node.inputs[0] is x and "start" not in shape_node.attrs and "end" not in shape_node.attrs
    target = const_value(back.inputs[1])
    dims = x.shape
    if target is None or dims is None or len(target) != len(dims) or not all(isinstance(d, int) for d in dims):
        return False
    resolved = [dims[i] if (t == 0 and not back.attrs.get("allowzero", 0)) else int(t) for i, t in enumerate(target)]
    if resolved.count(-1) == 1:
        known = int(np.prod([d for d in resolved if d != -1]))
        resolved[resolved.index(-1)] = int(np.prod(dims)) // max(known, 1)
    return resolved == list(dims)
