"""Size plans from loaded samples (runtime.sizes.plan_samples): every sample is a reference, a sample the
reference cannot run is one sentence, and the gate's second size and batch 3 are still added beside them
for dynamic axes."""

from __future__ import annotations

import numpy as np
import pytest

from onnxmend.core.errors import OnnxmendError
from onnxmend.core.specs import TensorSpec
from onnxmend.runtime.sizes import plan_samples

DYNAMIC = [TensorSpec("x", ("N", 4, "T"))]


def doubled(feeds):
    if feeds["x"].shape[2] % 2:
        raise RuntimeError("T must be even")
    return {"y": feeds["x"] * 2}


def test_every_loaded_sample_is_a_reference_and_only_they_without_more_sizes() -> None:
    samples = [{"x": np.full((1, 4, 6), float(i), np.float32)} for i in range(3)]
    plan = plan_samples(DYNAMIC, doubled, samples, "The source model")
    assert [s.label for s in plan.sets] == ["sample 0", "sample 1", "sample 2"]
    assert float(plan.sets[2].outputs["y"][0, 0, 0]) == 4.0


def test_the_gate_adds_a_second_size_and_batch_three_beside_the_samples() -> None:
    plan = plan_samples(DYNAMIC, doubled, [{"x": np.ones((1, 4, 6), np.float32)}], "The input graph", more_sizes=True)
    assert [s.label for s in plan.sets] == ["sample 0", "batch 1, dynamic dims 12", "batch 3, dynamic dims 6"]


def test_a_sample_the_reference_cannot_run_is_one_sentence_naming_it() -> None:
    samples = [{"x": np.ones((1, 4, 6), np.float32)}, {"x": np.ones((1, 4, 7), np.float32)}]
    with pytest.raises(OnnxmendError, match=r"The source model cannot run on loaded sample 1 \(T must be even\)"):
        plan_samples(DYNAMIC, doubled, samples, "The source model")
