"""The manager's per-pass bookkeeping stays linear: sorting keeps a valid order, a pass that changed
nothing or left the graph tidy is not swept again, op counts carry over, the collector is paused."""

from __future__ import annotations

import gc

import numpy as np
import onnx_graphsurgeon as gs
import pytest

from onnxmend.passes.infra import round_ops
from onnxmend.passes.infra.base import Pass, PassContext, PassResult
from onnxmend.passes.infra.graph_ops import sweep, toposort
from onnxmend.passes.infra.manager import collector_paused
from onnxmend.passes.layout.push_transposes import PushTransposes

CTX = PassContext(opset=17)


def relu_chain(n: int) -> tuple[gs.Graph, list[gs.Node]]:
    x = gs.Variable("x", np.float32, [1, 4])
    tensors = [x] + [gs.Variable(f"t{i}", np.float32, [1, 4]) for i in range(n)]
    nodes = [gs.Node("Relu", f"r{i}", inputs=[tensors[i]], outputs=[tensors[i + 1]]) for i in range(n)]
    return gs.Graph(nodes=list(nodes), inputs=[x], outputs=[tensors[-1]]), nodes


def test_toposort_keeps_a_valid_order_and_moves_a_late_producer_before_its_first_reader() -> None:
    graph, nodes = relu_chain(4)
    toposort(graph)
    assert graph.nodes == nodes
    graph.nodes = [nodes[0], nodes[2], nodes[3], nodes[1]]  # r1 appended at the end, as a rewrite does
    toposort(graph)
    assert [n.name for n in graph.nodes] == ["r0", "r1", "r2", "r3"]


def test_toposort_refuses_a_cycle() -> None:
    graph, nodes = relu_chain(3)
    nodes[0].inputs[0] = nodes[2].outputs[0]
    with pytest.raises(ValueError, match="cycle"):
        toposort(graph)


class LeavesDeadNode(Pass):
    """Adds a Relu nobody reads; says it changed one node, and whether it claims the graph tidy."""

    name, fixes = "leaves-dead-node", "test"

    def __init__(self, tidy: bool) -> None:
        self.tidy = tidy

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        dead = gs.Variable("dead", np.float32, [1, 4])
        graph.nodes.append(gs.Node("Relu", "dead_relu", inputs=[graph.inputs[0]], outputs=[dead]))
        return PassResult(changed=1, tidy=self.tidy)


@pytest.mark.parametrize("tidy", [False, True])
def test_only_a_pass_that_says_it_left_the_graph_tidy_is_not_swept_again(tidy: bool) -> None:
    graph, _ = relu_chain(2)
    round_ops.apply_once(graph, LeavesDeadNode(tidy), CTX, 1)
    assert ("dead_relu" in [n.name for n in graph.nodes]) is tidy


def test_push_transposes_leaves_the_graph_swept_and_sorted_when_it_says_so() -> None:
    x = gs.Variable("x", np.float32, [1, 2, 3, 4])
    a, b, c = (gs.Variable(name, np.float32) for name in "abc")
    nodes = [gs.Node("Transpose", "t1", {"perm": [0, 2, 3, 1]}, [x], [a]), gs.Node("Relu", "r", inputs=[a], outputs=[b]),
             gs.Node("Transpose", "t2", {"perm": [0, 3, 1, 2]}, [b], [c])]
    graph = gs.Graph(nodes=nodes, inputs=[x], outputs=[c])
    result = PushTransposes().apply(graph, CTX)
    assert result.changed and result.tidy
    order = [n.name for n in graph.nodes]
    assert sweep(graph) == 0  # nothing dead was left
    toposort(graph)
    assert [n.name for n in graph.nodes] == order == ["r"]


def test_op_counts_carry_over_a_pass_that_changed_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    class Nothing(Pass):
        name, fixes = "nothing", "test"

        def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
            return PassResult()

    calls = []
    monkeypatch.setattr(round_ops, "op_counts", lambda g: calls.append(g) or {"Relu": len(g.nodes)})
    graph, _ = relu_chain(2)
    outcome = round_ops.apply_once(graph, Nothing(), CTX, 1, counts={"Relu": 2})
    assert calls == [] and outcome.counts == {"Relu": 2}
    round_ops.apply_once(graph, LeavesDeadNode(False), CTX, 1, counts=outcome.counts)
    assert len(calls) == 1  # a pass that changed something is counted once, after it


@pytest.mark.parametrize("enabled", [True, False])
def test_the_collector_is_paused_during_the_pipeline_and_left_as_it_was(enabled: bool) -> None:
    was = gc.isenabled()
    (gc.enable if enabled else gc.disable)()
    try:
        with collector_paused():
            assert not gc.isenabled()
        assert gc.isenabled() is enabled
    finally:
        (gc.enable if was else gc.disable)()


def test_the_first_graph_is_the_inferred_model_imported_with_the_provenance_read_beside_the_inference(monkeypatch):
    """first_graph reads the nodes' provenance while the worker infers: the graph has the inferred shapes,
    every node the hints importing the inferred model gives it, and the read ran before inference returned."""
    from onnx import TensorProto

    from onnxmend.core.provenance import PROVENANCE_KEY, write_list
    from onnxmend.passes.infra.provenance import hints, import_graph
    from tests.builders import make_model, node

    model = make_model([node("Relu", ["x"], "r"), node("Sigmoid", ["r"], "y")],
                       {"x": ((1, 3, 4), TensorProto.FLOAT)}, ["y"])
    write_list(model.graph.node[0], PROVENANCE_KEY, ["L:relu"])
    order: list[str] = []
    read, infer = round_ops.read_seeds, round_ops.infer_shapes_isolated

    def slow_inference(m):
        import time
        time.sleep(0.3)
        order.append("inferred")
        return infer(m)

    monkeypatch.setattr(round_ops, "infer_shapes_isolated", slow_inference)
    monkeypatch.setattr(round_ops, "read_seeds", lambda m: order.append("read") or read(m))
    inferred, graph = round_ops.first_graph(model)
    assert order == ["read", "inferred"]
    assert inferred is not model and [vi.name for vi in inferred.graph.value_info] == ["r"]
    expected = import_graph(inferred)
    assert [(n.name, hints(n)) for n in graph.nodes] == [(n.name, hints(n)) for n in expected.nodes]
    assert hints(graph.nodes[0]) == ("L:relu",)
    assert [t.shape for t in graph.nodes[0].outputs] == [[1, 3, 4]]


def test_refresh_shapes_refines_what_is_not_static_and_reads_nothing_for_what_is():
    """After a strict check a static, typed tensor is as inference has it (inference refuses any other):
    it is not read again; a tensor with an unknown dim or no dtype takes what inference found."""
    import onnx
    from onnx import TensorProto, helper

    graph, nodes = relu_chain(2)
    known, unknown = nodes[0].outputs[0], nodes[1].outputs[0]
    unknown.shape, unknown.dtype = [1, None], None
    infos = [helper.make_tensor_value_info("t0", TensorProto.DOUBLE, [7, 7]),  # never read: t0 is static
             helper.make_tensor_value_info("t1", TensorProto.FLOAT, [1, 4])]
    model = helper.make_model(helper.make_graph([], "g", [], [], value_info=infos))
    assert round_ops.refresh_shapes(graph, model) == 1
    assert (known.shape, known.dtype) == ([1, 4], np.float32)
    assert (list(unknown.shape), unknown.dtype) == ([1, 4], np.float32)
    assert round_ops.refresh_shapes(graph, onnx.ModelProto()) == 0
