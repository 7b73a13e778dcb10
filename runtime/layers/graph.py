"""The source model as layers: names, network order, weights, configuration facts and producers.

A :class:`SourceLayer` is what a user calls a layer in their framework — a Keras operation by its name, a
torch module by its path. ``facts`` are its configuration in the terms every side is compared in:
``kernel``, ``strides``, ``dilations``, ``pads`` (ONNX order ``[top, left, bottom, right]``, computed for
``padding="same"``), ``group``, ``epsilon``, ``momentum`` (ONNX convention ``running = m·running +
(1 − m)·batch``; torch's 0.1 is 0.9), ``axes`` (the normalized axes as letters, ``["C"]`` or ``["C", "H",
"W"]``), ``activation``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

CHANNELS_LAST = {2: "NC", 3: "NLC", 4: "NHWC", 5: "NDHWC"}
CHANNELS_FIRST = {2: "NC", 3: "NCL", 4: "NCHW", 5: "NCDHW"}


@dataclass(frozen=True)
class SourceLayer:
    name: str
    kind: str  # class name: Conv2D, BatchNorm2d, ...
    index: int  # network order
    params: tuple[tuple[str, tuple[int, ...]], ...] = ()
    facts: dict[str, object] = field(default_factory=dict, hash=False, compare=False)
    inputs: tuple[str, ...] = ()  # layers whose outputs it reads
    container: bool = False  # a module with children (its output is often its last child's)

    @property
    def has_weights(self) -> bool:
        return bool(self.params)

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "index": self.index, "facts": self.facts,
                "params": {n: list(s) for n, s in self.params}}


@dataclass
class SourceGraph:
    framework: str  # "keras", "torch", "onnx"
    layers: list[SourceLayer]
    channels_last: bool

    def __post_init__(self) -> None:
        self._by_name = {layer.name: layer for layer in self.layers}

    def get(self, name: str) -> SourceLayer | None:
        return self._by_name.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    @property
    def names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    def consumers(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {layer.name: [] for layer in self.layers}
        for layer in self.layers:
            for source in layer.inputs:
                found.setdefault(source, []).append(layer.name)
        return found

    def letters(self, rank: int) -> str:
        return (CHANNELS_LAST if self.channels_last else CHANNELS_FIRST).get(rank, "".join(f"d{i}" for i in range(rank)))


def axis_letters(axes: Sequence[int], rank: int, channels_last: bool) -> list[str]:
    """Axes of a rank-``rank`` tensor as letters (N, C, H, W, L, D)."""
    names = (CHANNELS_LAST if channels_last else CHANNELS_FIRST).get(rank)
    if names is None:
        return [str(a) for a in axes]
    return sorted({names[a % rank] for a in axes}, key="NCDHWL".find)


def same_pads(size: Sequence[int], kernel: Sequence[int], strides: Sequence[int],
              dilations: Sequence[int]) -> list[int] | None:
    """TF/Keras ``padding="same"`` as ONNX pads (begins then ends; the odd element goes at the end)."""
    if not size or any(not isinstance(s, int) for s in size):
        return None
    begins, ends = [], []
    for n, k, s, d in zip(size, kernel, strides, dilations):
        total = max((math.ceil(n / s) - 1) * s + (k - 1) * d + 1 - n, 0)
        begins.append(total // 2)
        ends.append(total - total // 2)
    return begins + ends


def as_list(value: object, rank: int) -> list[int]:
    """An int or a sequence of ints as a list of ``rank`` ints."""
    if isinstance(value, (list, tuple)):
        return [int(v) for v in value]
    return [int(value)] * rank  # type: ignore[call-overload]
