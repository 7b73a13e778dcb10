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


def test_dedupe_hashes_unloaded_constants_from_their_bytes_and_leaves_them_unloaded():
    """Tensors graphsurgeon has not loaded are hashed from raw_data: duplicates still share one, the
    survivors stay lazy (exported from their own tensor), and equal bytes of another dtype or shape, or a
    tensor stored in typed fields, are told apart."""
    import onnx
    import onnx_graphsurgeon as gs

    from onnxmend.passes.cleanup.dedupe_initializers import DedupeInitializers
    from onnxmend.passes.infra.base import PassContext
    from tests.builders import init as const

    a = np.arange(4, dtype=np.float32)
    typed = helper.make_tensor("T", onnx.TensorProto.FLOAT, [4], a.tolist())  # float_data, not raw_data
    nodes = [helper.make_node("Add", ["x", "A"], ["t"]), helper.make_node("Mul", ["t", "B"], ["u"]),
             helper.make_node("Sub", ["u", "T"], ["v"]), helper.make_node("Reshape", ["v", "S"], ["w"]),
             helper.make_node("Div", ["w", "R"], ["y"]), helper.make_node("Identity", ["I"], ["z"])]
    same_bytes_int = a.view(np.int32)
    model = make_model(nodes, [value("x", [4])], [value("y", [2, 2]), value("z", [4], onnx.TensorProto.INT32)],
                       [const("A", a), const("B", a.copy()), typed, const("S", np.array([2, 2], np.int64)),
                        const("R", a.reshape(2, 2)), const("I", same_bytes_int)])
    graph = gs.import_onnx(model)
    result = DedupeInitializers().apply(graph, PassContext(opset=17))
    assert result.changed == 2  # B -> A, and T (typed, loaded to hash) -> A
    used = {t.name for node in graph.nodes for t in node.inputs if isinstance(t, gs.Constant)}
    assert used == {"A", "S", "R", "I"}  # R: same bytes, other shape; I: same bytes, other dtype
    tensors = graph.tensors()
    assert all(isinstance(tensors[n]._values, gs.ir.tensor.LazyValues) for n in ("A", "S", "R", "I"))
    fixed, _ = run_passes(model, [DedupeInitializers()])
    assert sorted(t.name for t in fixed.graph.initializer) == ["A", "I", "R", "S"]


def test_an_unloaded_constant_is_hashed_once_per_pipeline_and_a_replaced_value_is_hashed_anew(monkeypatch):
    """Round after round the pass meets the same unloaded constants: their key, kept on the tensor, is not
    computed again. A constant whose values a pass replaced is keyed by its new values."""
    import onnx_graphsurgeon as gs

    from onnxmend.passes.cleanup import dedupe_initializers as module
    from onnxmend.passes.infra.base import PassContext
    from tests.builders import init as const

    a = np.arange(4, dtype=np.float32)
    nodes = [helper.make_node("Add", ["x", "A"], ["t"]), helper.make_node("Mul", ["t", "B"], ["y"])]
    graph = gs.import_onnx(make_model(nodes, [value("x", [4])], [value("y", [4])],
                                      [const("A", a), const("B", a + 1)]))
    computed = []
    stored_key = module._stored_key
    monkeypatch.setattr(module, "_stored_key", lambda tensor: computed.append(tensor.name) or stored_key(tensor))
    ctx = PassContext(opset=17)
    assert module.DedupeInitializers().apply(graph, ctx).changed == 0 and sorted(computed) == ["A", "B"]
    assert module.DedupeInitializers().apply(graph, ctx).changed == 0 and sorted(computed) == ["A", "B"]
    b = graph.nodes[1].inputs[1]
    b.values = a.copy()  # a pass rewrote B's values: B now equals A
    assert module.DedupeInitializers().apply(graph, ctx).changed == 1
    assert graph.nodes[1].inputs[1] is graph.nodes[0].inputs[1]
