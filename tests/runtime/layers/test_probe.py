"""Capture under a memory budget: chunks never hold more than the budget, bisection measures fewer points
and still names the first failing one, missing tensors are reported, runs are counted."""

from __future__ import annotations

import numpy as np
import pytest

from onnxmend.runtime.compare import Tolerance
from onnxmend.runtime.layers.probe import Probe, run_probes

N = 40
SIZE = 1000  # floats per tensor


def sides(first_bad: int | None):
    """Reference and actual captures of N points; from ``first_bad`` on the actual is off by 1."""
    rng = np.random.default_rng(0)
    base = {f"t{i}": rng.standard_normal(SIZE).astype(np.float32) for i in range(N)}
    asked: list[list[str]] = []

    def reference(keys):
        asked.append(list(keys))
        return {k: base[k] for k in keys}

    def actual(keys):
        return {k: base[k] + (1.0 if first_bad is not None and int(k[1:]) >= first_bad else 0.0) for k in keys}

    return reference, actual, asked


PROBES = [Probe(f"layer{i}", f"t{i}", f"t{i}", nbytes=2 * SIZE * 4) for i in range(N)]


def test_chunks_hold_at_most_the_budget_and_measure_every_point() -> None:
    reference, actual, asked = sides(first_bad=17)
    run = run_probes(PROBES, reference, actual, Tolerance(), budget=10 * 2 * SIZE * 4)
    assert len(run.results) == N and run.runs == 4 and all(len(a) == 10 for a in asked)
    assert run.peak_bytes <= 10 * 2 * SIZE * 4
    assert next(r.probe.label for r in run.results if r.failed) == "layer17"


@pytest.mark.parametrize("first_bad", [0, 1, 17, 39])
def test_bisection_names_the_first_failing_point_with_fewer_measurements(first_bad: int) -> None:
    reference, actual, _ = sides(first_bad)
    run = run_probes(PROBES, reference, actual, Tolerance(), budget=2**30, strategy="bisect")
    assert next(r.probe.label for r in run.results if r.failed) == f"layer{first_bad}"
    assert len(run.results) < N / 2 and run.runs <= 6


def test_bisection_when_everything_passes_measures_a_few_points() -> None:
    reference, actual, _ = sides(None)
    run = run_probes(PROBES, reference, actual, Tolerance(), strategy="bisect")
    assert not any(r.failed for r in run.results) and run.runs == 1


def test_a_tensor_one_side_did_not_produce_is_missing_not_a_crash() -> None:
    run = run_probes([Probe("gone", "a", "b")], lambda keys: {}, lambda keys: {"b": np.ones(3)}, Tolerance())
    assert run.results[0].verdict == "missing" and "reference" in run.results[0].reason


def test_layouts_are_undone_before_comparing() -> None:
    frame = np.random.default_rng(0).standard_normal((1, 4, 5, 3)).astype(np.float32)
    probe = Probe("conv", "ref", "act", None, (0, 3, 1, 2))
    run = run_probes([probe], lambda keys: {"ref": frame}, lambda keys: {"act": frame.transpose(0, 3, 1, 2)},
                     Tolerance())
    assert run.results[0].verdict == "pass" and run.results[0].max_abs == 0.0
