"""Are two weights the same weights? Equal, equal after a permutation, equal up to a per-channel scale.

A port that transposed a kernel wrong has the right numbers in the wrong places: that is a *weight*
difference, not an attribute difference, and :func:`compare_weights` says which permutation makes the two
equal (``kh`` and ``kw`` swapped). A Conv whose folded BatchNorm used another epsilon differs from its twin
by one factor per output channel, which points at the norm rather than the kernel.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

_AXES = {4: ("out", "in", "kh", "kw"), 3: ("out", "in", "k"), 2: ("rows", "cols"), 5: ("out", "in", "kd", "kh", "kw")}


@dataclass(frozen=True)
class WeightVerdict:
    equal: bool  # the same numbers in the same places
    summary: str  # "equal", "equal after swapping kh and kw", "differ (max abs 0.3)", ...

    def to_json(self) -> dict[str, object]:
        return {"equal": self.equal, "summary": self.summary}


def compare_weights(a: np.ndarray | None, b: np.ndarray | None, rtol: float = 1e-5, atol: float = 1e-6) -> WeightVerdict:
    if a is None or b is None:
        return WeightVerdict(False, "not comparable (a weight is not a constant)")
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if a.shape == b.shape and np.allclose(a, b, rtol=rtol, atol=atol):
        return WeightVerdict(True, "equal")
    names = _AXES.get(a.ndim, tuple(f"axis{i}" for i in range(a.ndim)))
    for perm in itertools.permutations(range(a.ndim)):
        if perm == tuple(range(a.ndim)) or tuple(a.shape[i] for i in perm) != b.shape:
            continue
        if np.allclose(np.transpose(a, perm), b, rtol=rtol, atol=atol):
            return WeightVerdict(False, f"equal after {_describe(perm, names)}: the kernel was transposed wrong")
    if a.shape == b.shape and a.ndim >= 2:
        ratio = _channel_ratio(a, b)
        if ratio is not None:
            return WeightVerdict(False, f"equal up to one factor per output channel ({ratio}): a scaled kernel, "
                                        "or a folded norm that differs")
    spelled = _broadcast_equal(a, b, rtol, atol) or _broadcast_equal(b, a, rtol, atol)
    if spelled:
        return WeightVerdict(True, f"equal (a per-channel weight spelled out over {spelled})")
    if a.shape != b.shape:
        return WeightVerdict(False, f"shapes differ: {list(a.shape)} vs {list(b.shape)}")
    diff = np.abs(a - b)
    return WeightVerdict(False, f"differ (max abs {diff.max():.3g}, {np.mean(diff > atol + rtol * np.abs(b)):.0%} of values)")


def _broadcast_equal(small: np.ndarray, big: np.ndarray, rtol: float, atol: float) -> list[int] | None:
    """``big`` is ``small`` repeated over trailing axes (a (C,) affine written as (C, H, W))."""
    if small.ndim >= big.ndim or big.shape[: small.ndim] != small.shape:
        return None
    expanded = small.reshape(small.shape + (1,) * (big.ndim - small.ndim))
    return list(big.shape) if np.allclose(np.broadcast_to(expanded, big.shape), big, rtol=rtol, atol=atol) else None


def _describe(perm: tuple[int, ...], names: tuple[str, ...]) -> str:
    moved = [i for i, p in enumerate(perm) if p != i]
    if len(moved) == 2 and perm[moved[0]] == moved[1]:
        return f"swapping {names[moved[0]]} and {names[moved[1]]}"
    return "reading its axes as (" + ", ".join(names[p] for p in perm) + ")"


def _channel_ratio(a: np.ndarray, b: np.ndarray) -> str | None:
    flat_a, flat_b = a.reshape(a.shape[0], -1), b.reshape(b.shape[0], -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(np.abs(flat_a) > 1e-12, flat_b / flat_a, np.nan)
    per_channel = np.nanmedian(ratio, axis=1)
    if not np.all(np.isfinite(per_channel)):
        return None
    if not np.allclose(flat_b, flat_a * per_channel[:, None], rtol=1e-4, atol=1e-6):
        return None
    return f"{per_channel.min():.6g}…{per_channel.max():.6g}"
