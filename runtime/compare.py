"""Comparing two sets of outputs: the numbers, the verdict, and the tolerance that would have passed.

The verdict is one of ``pass``, ``mismatch`` or ``degenerate``. A reference that is near-constant or
near-zero makes any comparison meaningless (a random-weight classifier whose logits are all ~1e-11
"matches" anything small), so it is never called a pass.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal, Mapping

import numpy as np

Verdict = Literal["pass", "mismatch", "degenerate"]

DEFAULT_ATOL = 1e-4
DEFAULT_RTOL = 1e-3
# Below these the reference carries no signal worth comparing against.
DEGENERATE_STD = 1e-6
DEGENERATE_ABS = 1e-6


@dataclass(frozen=True)
class OutputComparison:
    name: str
    shape: tuple[int, ...]
    max_abs: float
    mean_abs: float
    max_rel: float
    cosine: float
    scale: float  # max(1, max |reference|): atol is applied relative to it
    ref_std: float
    atol: float
    rtol: float
    needed_atol: float  # smallest atol (at this rtol, times scale) that would have passed
    needed_rtol: float  # smallest rtol (at this atol) that would have passed
    verdict: Verdict
    reason: str = ""

    @property
    def max_abs_scaled(self) -> float:
        return self.max_abs / self.scale

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["shape"] = list(self.shape)
        data["max_abs_scaled"] = self.max_abs_scaled
        return data


@dataclass(frozen=True)
class Comparison:
    outputs: list[OutputComparison]

    @property
    def verdict(self) -> Verdict:
        verdicts = {o.verdict for o in self.outputs}
        if "mismatch" in verdicts:
            return "mismatch"
        if "degenerate" in verdicts or not self.outputs:
            return "degenerate"
        return "pass"

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    @property
    def worst_max_abs_scaled(self) -> float:
        return max((o.max_abs_scaled for o in self.outputs), default=0.0)

    def to_json(self) -> dict[str, object]:
        return {"verdict": self.verdict, "outputs": [o.to_json() for o in self.outputs]}


def compare_arrays(
    name: str, reference: np.ndarray, actual: np.ndarray,
    atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL,
) -> OutputComparison:
    ref = np.asarray(reference, dtype=np.float64)
    act = np.asarray(actual, dtype=np.float64)
    if ref.shape != act.shape:
        if ref.size == act.size:
            act = act.reshape(ref.shape)
        else:
            return _shape_mismatch(name, ref, act, atol, rtol)
    diff = np.abs(ref - act)
    max_abs = float(diff.max()) if diff.size else 0.0
    abs_ref = np.abs(ref)
    scale = max(1.0, float(abs_ref.max()) if ref.size else 0.0)
    max_rel = float((diff / np.maximum(abs_ref, 1e-12)).max()) if diff.size else 0.0
    cosine = _cosine(ref, act)
    ref_std = float(ref.std()) if ref.size else 0.0
    needed_atol = float(np.maximum(diff - rtol * abs_ref, 0).max() / scale) if diff.size else 0.0
    needed_rtol = float((np.maximum(diff - atol * scale, 0) / np.maximum(abs_ref, 1e-12)).max()) if diff.size else 0.0
    finite = bool(np.isfinite(act).all())
    close = finite and bool(np.all(diff <= atol * scale + rtol * abs_ref))
    verdict: Verdict
    reason = ""
    if not np.isfinite(ref).all():
        verdict, reason = "degenerate", "the reference output contains NaN or Inf"
    elif ref.size and (float(abs_ref.max()) < DEGENERATE_ABS):
        verdict, reason = "degenerate", f"the reference output is near zero (max |x| = {abs_ref.max():.2e})"
    elif ref.size > 1 and ref_std < DEGENERATE_STD * scale:
        verdict, reason = "degenerate", f"the reference output is near constant (std = {ref_std:.2e})"
    elif close:
        verdict = "pass"
    else:
        verdict = "mismatch"
        reason = "non-finite values in the output" if not finite else (
            f"max abs diff {max_abs:.3g} exceeds atol {atol:g}×{scale:.3g} + rtol {rtol:g}×|ref|"
        )
    return OutputComparison(
        name, tuple(ref.shape), max_abs, float(diff.mean()) if diff.size else 0.0, max_rel, cosine,
        scale, ref_std, atol, rtol, needed_atol, needed_rtol, verdict, reason,
    )


def compare_outputs(
    reference: Mapping[str, np.ndarray], actual: Mapping[str, np.ndarray],
    atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL,
) -> Comparison:
    """Compare outputs by name; when names differ (frameworks rename outputs) fall back to order."""
    if set(reference) == set(actual):
        pairs = [(n, reference[n], actual[n]) for n in reference]
    elif len(reference) == len(actual):
        pairs = [(a, r, actual[a]) for (_, r), a in zip(reference.items(), actual)]
    else:
        raise ValueError(
            f"the source has {len(reference)} output(s) and the ONNX model {len(actual)}; they cannot be paired"
        )
    return Comparison([compare_arrays(n, r, a, atol, rtol) for n, r, a in pairs])


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    na, nb = float(np.linalg.norm(a)), float(np.linalg.norm(b))
    if na == 0.0 or nb == 0.0:
        return 1.0 if na == nb else 0.0
    return float(np.dot(a.ravel(), b.ravel()) / (na * nb))


def _shape_mismatch(name: str, ref: np.ndarray, act: np.ndarray, atol: float, rtol: float) -> OutputComparison:
    return OutputComparison(
        name, tuple(ref.shape), float("inf"), float("inf"), float("inf"), 0.0, 1.0, float(ref.std()),
        atol, rtol, float("inf"), float("inf"), "mismatch",
        f"shape {tuple(act.shape)} does not match the reference shape {tuple(ref.shape)}",
    )
