"""What changed at a graph's interface between two descriptions of it: the source model and the written
model (``convert``), or the input and output files of ``fix``.

Each changed tensor is one :class:`TensorChange`: its name before and after, its spec before and after,
and what changed (``aspects``): ``name``, ``dtype``, ``layout`` (the recorded permutation of
``onnxmend.interface``), ``static`` (a dynamic dim became a number: ``None`` batch → 1), ``dynamic`` (a
number became dynamic), ``shape`` (a number became another), ``added``, ``removed``. Tensors are
matched by name first, then the remaining ones by position. Dims that are dynamic on both sides are equal
whatever their names (``batch``, ``unk__12``, ``None``). Why each change was made is the flow's to say
(``onnxmend.flows.interface``); this module only compares.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Literal, Mapping, Sequence

from onnxmend.core.specs import TensorSpec

Kind = Literal["input", "output"]
_UNNAMED = re.compile(r"unk__\d+|s\d+")  # tf2onnx's and torch.export's names for an anonymous dynamic dim


@dataclass(frozen=True)
class TensorChange:
    """One graph input or output that is not what it was."""

    kind: Kind
    before: TensorSpec | None  # None: added
    after: TensorSpec | None  # None: removed
    aspects: tuple[str, ...]
    why: str = ""

    @property
    def tensor(self) -> str:
        """The name the written model gives it (the old name when it was removed)."""
        spec = self.after or self.before
        return spec.name if spec else ""

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "tensor": self.tensor, "aspects": list(self.aspects),
                "before": describe(self.before), "after": describe(self.after), "why": self.why,
                "before_spec": self.before.to_json() if self.before else None,
                "after_spec": self.after.to_json() if self.after else None}


def describe(spec: TensorSpec | None) -> str:
    """``image float32 [?,96,96,3] NHWC``; ``-`` for a tensor that is not there."""
    if spec is None:
        return "-"
    dims = ",".join(str(d) if isinstance(d, int) else ("?" if not d or _UNNAMED.fullmatch(d) else d) for d in spec.shape)
    layout = f" {spec.layout}" if spec.layout not in ("other", "") else ""
    return f"{spec.name} {spec.dtype} [{dims}]{layout}"


def diff_specs(kind: Kind, before: Sequence[TensorSpec], after: Sequence[TensorSpec],
               perms: Mapping[str, Sequence[int]] | None = None) -> list[TensorChange]:
    """The changes from ``before`` to ``after``; ``perms[name]`` says ``after = transpose(before, perm)``."""
    perms = perms or {}
    pairs = _pair(before, after)
    changes = []
    for old, new in pairs:
        if old is None or new is None:
            changes.append(TensorChange(kind, old, new, ("added",) if old is None else ("removed",)))
            continue
        aspects = _aspects(old, new, perms.get(new.name))
        if aspects:
            changes.append(TensorChange(kind, old, _with_layout(new, old, perms.get(new.name)), aspects))
    return changes


def _pair(before: Sequence[TensorSpec], after: Sequence[TensorSpec]) -> list[tuple[TensorSpec | None, TensorSpec | None]]:
    by_name = {s.name: s for s in after}
    matched = {s.name for s in before if s.name in by_name}
    rest_after = [s for s in after if s.name not in matched]
    pairs: list[tuple[TensorSpec | None, TensorSpec | None]] = []
    for old in before:
        if old.name in matched:
            pairs.append((old, by_name[old.name]))
        elif rest_after:
            pairs.append((old, rest_after.pop(0)))
        else:
            pairs.append((old, None))
    pairs += [(None, new) for new in rest_after]
    return pairs


def _aspects(old: TensorSpec, new: TensorSpec, perm: Sequence[int] | None) -> tuple[str, ...]:
    aspects = []
    if old.name != new.name:
        aspects.append("name")
    if old.dtype != new.dtype:
        aspects.append("dtype")
    shape = old.shape
    if perm is not None and len(perm) == len(shape) and list(perm) != list(range(len(perm))):
        aspects.append("layout")
        shape = tuple(shape[p] for p in perm)
    if len(shape) != len(new.shape):
        aspects.append("shape")
        return tuple(aspects)
    for a, b in zip(shape, new.shape):
        kind = _dim_change(a, b)
        if kind and kind not in aspects:
            aspects.append(kind)
    return tuple(aspects)


def _dim_change(a: int | str | None, b: int | str | None) -> str:
    a_static, b_static = isinstance(a, int), isinstance(b, int)
    if a_static and b_static:
        return "shape" if a != b else ""
    if a_static != b_static:
        return "static" if b_static else "dynamic"
    return ""


def _with_layout(new: TensorSpec, old: TensorSpec, perm: Sequence[int] | None) -> TensorSpec:
    """The written spec with the layout the permutation gives it (NHWC → NCHW), for the table."""
    if new.layout not in ("other", "") or old.layout in ("other", ""):
        return new
    if perm is None:
        return replace(new, layout=old.layout)
    layout = "".join(old.layout[p] for p in perm) if len(perm) == len(old.layout) else "other"
    return replace(new, layout=layout if layout in ("NCHW", "NHWC", "NCL", "NLC") else "other")  # type: ignore[arg-type]


def relative_perms(before: Mapping[str, Sequence[int]], after: Mapping[str, Sequence[int]]) -> dict[str, list[int]]:
    """Permutations from one file to another when each records its own from the source: with
    ``b = transpose(src, pb)`` and ``a = transpose(src, pa)``, ``a = transpose(b, q)``, ``q[k] = pb.index(pa[k])``."""
    out = {}
    for name, pa in after.items():
        pb = list(before.get(name, range(len(pa))))
        if len(pb) == len(pa):
            out[name] = [pb.index(p) for p in pa]
    return out
