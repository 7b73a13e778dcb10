"""The size planner's limits: sizes it picks stay within a memory budget, and a run that hangs or runs out
of memory ends the search instead of costing the full time limit at every size of the ladder."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from onnxmend.core.specs import TensorSpec
from onnxmend.core.worker import WorkerFailure
from onnxmend.runtime import sizes


def test_a_hang_ends_the_search_after_one_probe() -> None:
    calls = []

    def hangs(feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        calls.append({k: v.shape for k, v in feeds.items()})
        raise WorkerFailure("onnxruntime did not finish running the input graph within 120 s; it was stopped", "timeout")

    plan = sizes.plan_sizes([TensorSpec("x", ("N", 3, "H", "W"))], hangs)
    assert calls == [{"x": (1, 3, 8, 8)}]
    assert not plan.runnable
    assert plan.unavailable("the input graph") == ("the input graph cannot run at any input size tried (batch 1, "
                                                   "dynamic dims 8: onnxruntime did not finish running the input graph "
                                                   "within 120 s; it was stopped)")


def test_a_failure_that_is_not_a_hang_goes_on_to_the_next_size() -> None:
    tried = []

    def needs_64(feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        tried.append(feeds["x"].shape[-1])
        if feeds["x"].shape[-1] < 64:
            raise WorkerFailure("onnxruntime crashed (SIGFPE) while running the input graph", "crash")
        return {"y": feeds["x"]}

    plan = sizes.plan_sizes([TensorSpec("x", (1, "T"))], needs_64)
    assert tried[:4] == [8, 16, 32, 64] and plan.runnable


def test_sizes_whose_inputs_exceed_the_budget_are_passed_over() -> None:
    shapes = []

    def never(feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        shapes.append(feeds["x"].shape)
        raise RuntimeError("no")

    # Four dynamic axes: at 1024 the ladder's input would be 1 x 1024^3 floats (4 GB), past the budget.
    plan = sizes.plan_sizes([TensorSpec("x", ("N", "a", "b", "c"))], never)
    largest = max(int(np.prod(s)) * 4 for s in shapes)
    assert largest <= sizes.PROBE_BUDGET_BYTES
    assert any("would take 4295 MB" in f for f in plan.failures)


def test_declared_inputs_that_cannot_be_allocated_are_a_reason_not_a_traceback(monkeypatch) -> None:
    # a file declaring x[1, 10^9] (4 GB of float32) under a memory limit: numpy raises MemoryError
    def no_memory(*args, **kwargs):
        raise MemoryError("Unable to allocate 7.45 GiB")

    monkeypatch.setattr(sizes, "synthesize", no_memory)
    plan = sizes.plan_sizes([TensorSpec("x", (1, 1_000_000_000))], lambda feeds: {"y": feeds["x"]})
    assert not plan.runnable
    assert plan.unavailable("the input graph") == ("the input graph cannot run at any input size tried (the declared "
                                                   "sizes: its inputs (4.0 GB) cannot be allocated on this machine)")
