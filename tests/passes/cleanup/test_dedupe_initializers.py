"""The pass manager: fixed point, gate, rollback, checker failures, interface metadata, op deltas."""

from __future__ import annotations

import numpy as np
from onnx import helper

from tests.builders import make_model, run_passes, value


def test_dedupe_initializers_shares_identical_constants_and_keeps_distinct_ones():
    from onnxmend.passes.cleanup.dedupe_initializers import DedupeInitializers
    from tests.builders import init as const

    a = np.arange(4, dtype=np.float32)
    nodes = [helper.make_node("Add", ["x", "A"], ["t"]), helper.make_node("Mul", ["t", "B"], ["u"]),
             helper.make_node("Sub", ["u", "C"], ["y"])]
    model = make_model(nodes, [value("x", [4])], [value("y", [4])],
                       [const("A", a), const("B", a.copy()), const("C", a.astype(np.float64).astype(np.float32) + 1)])
    fixed, report = run_passes(model, [DedupeInitializers()])
    assert sorted(t.name for t in fixed.graph.initializer) == ["A", "C"]
    assert report.records[0].changed == 1
    _, second = run_passes(fixed, [DedupeInitializers()])
    assert second.records == []
