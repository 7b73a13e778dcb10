"""The numbers that say how far one output is from its reference, each a small function of two arrays.

All work in float64 on arrays of the same shape. ``sqnr_db`` is ``10·log10(Σref² / Σ(ref − x)²)`` and
``None`` when the two are identical; ``top1`` is the share of rows whose argmax agrees, for
classifier-shaped outputs ([N, K] with K ≥ 2), ``None`` otherwise.
"""

from __future__ import annotations

import math
from typing import Callable

import numpy as np

Metric = Callable[[np.ndarray, np.ndarray], "float | None"]


def max_abs(ref: np.ndarray, act: np.ndarray) -> float:
    return float(np.max(np.abs(ref - act))) if ref.size else 0.0


def mean_abs(ref: np.ndarray, act: np.ndarray) -> float:
    return float(np.mean(np.abs(ref - act))) if ref.size else 0.0


def max_rel(ref: np.ndarray, act: np.ndarray) -> float:
    if not ref.size:
        return 0.0
    return float((np.abs(ref - act) / np.maximum(np.abs(ref), 1e-12)).max())


def cosine(ref: np.ndarray, act: np.ndarray) -> float:
    """Cosine similarity; exactly 1.0 for identical arrays (and both all-zero), 0.0 when only one is zero."""
    if ref.shape == act.shape and np.array_equal(ref, act):
        return 1.0
    na, nb = float(np.linalg.norm(ref)), float(np.linalg.norm(act))
    if na == 0.0 or nb == 0.0:
        return 1.0 if na == nb else 0.0
    if not math.isfinite(na) or not math.isfinite(nb):
        return 0.0
    return float(np.dot(ref.ravel(), act.ravel()) / (na * nb))


def sqnr_db(ref: np.ndarray, act: np.ndarray) -> float | None:
    noise = float(np.sum((ref - act) ** 2))
    if noise == 0.0:
        return None
    signal = float(np.sum(ref ** 2))
    return 10.0 * math.log10(signal / noise) if signal > 0 else -math.inf


def top1(ref: np.ndarray, act: np.ndarray) -> float | None:
    if ref.ndim != 2 or ref.shape[1] < 2:
        return None
    return float(np.mean(np.argmax(ref, axis=1) == np.argmax(act, axis=1)))


BUILT_IN: dict[str, Metric] = {
    "max_abs": max_abs, "mean_abs": mean_abs, "max_rel": max_rel, "cosine": cosine, "sqnr_db": sqnr_db, "top1": top1,
}
