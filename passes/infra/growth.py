"""The growth limit: a rewrite that makes the model's weights more than ``max_growth`` times what the
pipeline was given is refused, rolled back and named like any pass that fails the gate.

Constant folding can turn ``Expand(γ[C,1,1], [N,C,H,W])`` or a ``ConstantOfShape`` into a tensor the
size of an activation: the file grows by the activation's size (a GroupNorm model once went from
36.5 KB to 3.2 MB), and that constant ties the graph to the one input size it was folded for. Such a
rewrite is rarely worth it, so the manager refuses it unless the user raises the limit (``--max-growth``,
``inf`` for none).

The check is cheap: it adds up the dims of the initializers and Constant nodes (:func:`weight_bytes`),
nothing is serialised. Graphs whose weights are under :data:`GROWTH_FLOOR_BYTES` are measured against
that floor, so a tiny graph gaining a few constants is not refused.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import onnx

from onnxmend.core.graph import human_bytes, weight_bytes

DEFAULT_MAX_GROWTH = 1.5
GROWTH_FLOOR_BYTES = 64_000


@dataclass(frozen=True)
class GrowthLimit:
    """The weights the pipeline started from and how much they may grow."""

    before: int
    factor: float = DEFAULT_MAX_GROWTH
    floor: int = GROWTH_FLOOR_BYTES

    @property
    def limit(self) -> float:
        return self.factor * max(self.before, self.floor)

    def check(self, model: onnx.ModelProto) -> str:
        """Empty when ``model``'s weights are within the limit; otherwise the growth, stated."""
        after = weight_bytes(model)
        if math.isinf(self.factor) or after <= self.limit:
            return ""
        return (f"it grows the model's weights from {human_bytes(self.before)} to {human_bytes(after)} "
                f"({ratio_text(self.before, after)}), more than --max-growth {self.factor:g} allows "
                f"(pass --max-growth {math.ceil(after / max(self.before, 1)) + 1} or inf to accept it)")


def ratio_text(before: int, after: int) -> str:
    return f"{after / before:.2f}×" if before else "from nothing"
