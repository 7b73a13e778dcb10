"""The pass manager: fixed point, gate, rollback, checker failures, interface metadata, op deltas."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs
from onnx import helper

from onnxmend.core.graph import op_histogram
from onnxmend.core.interface import adapt_feeds, read_interface, restore_outputs
from onnxmend.passes.cleanup.remove_identity import RemoveIdentity
from onnxmend.passes.infra.base import InterfaceChange, Pass, PassContext, PassResult
from onnxmend.passes.infra.catalogue import resolve
from onnxmend.runtime.session import create_session
from tests.builders import conv_relu_model, make_model, run_passes, value


class PerturbWeight(Pass):
    """Test-only: a wrong pass that nudges the first float initializer."""

    name = "perturb-weight"
    fixes = "nothing; it breaks the numbers on purpose"

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        result = PassResult()
        for tensor in graph.tensors().values():
            if isinstance(tensor, gs.Constant) and tensor.values.dtype == np.float32 and tensor.values.size > 1:
                tensor.values = tensor.values + np.float32(0.5)
                result.changed = 1
                break
        return result


class BreakGraph(Pass):
    """Test-only: rewires a node to a tensor nobody produces, so the checker must refuse it."""

    name = "break-graph"
    fixes = "nothing"

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        graph.nodes[0].op = "NoSuchOp"
        return PassResult(changed=1)


class TransposeInput(Pass):
    """Test-only interface change: x becomes NHWC-transposed input with a Transpose back inside."""

    name = "transpose-input"
    fixes = "nothing"

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        x = graph.inputs[0]
        if x.shape[1] != 3:  # already done
            return PassResult()
        inner = gs.Variable("x_nchw", dtype=x.dtype, shape=x.shape)
        for node in list(x.outputs):
            node.inputs[node.inputs.index(x)] = inner
        x.shape = [x.shape[0], x.shape[2], x.shape[3], x.shape[1]]
        graph.nodes.append(gs.Node("Transpose", inputs=[x], outputs=[inner], attrs={"perm": [0, 3, 1, 2]}))
        return PassResult(changed=1, interface=[InterfaceChange("x", "input", (0, 2, 3, 1), "NCHW", "NHWC")])


def _run_model(model, feeds):
    return create_session(model, provider="cpu", opt_level="disable").run(feeds)


CLEANUP = "remove-identity,fold-constants,dedupe-initializers,eliminate-dead-nodes"


def test_wrong_pass_is_rejected_rolled_back_and_named():
    model = conv_relu_model()
    fixed, report = run_passes(model, [RemoveIdentity(), PerturbWeight()])
    assert [r.name for r in report.rejected] == ["perturb-weight"]
    assert "changed" in report.rejected[0].reason and "cosine" in report.rejected[0].reason
    feeds = {"x": np.ones((1, 3, 8, 8), np.float32)}
    np.testing.assert_allclose(_run_model(model, feeds)["y"], _run_model(fixed, feeds)["y"], atol=1e-6)
    assert report.to_json()["rejected"][0]["pass"] == "perturb-weight"


def test_without_verify_the_wrong_pass_goes_through():
    _, report = run_passes(conv_relu_model(), [PerturbWeight()], verify=False, max_rounds=1)
    assert report.rejected == [] and report.records[0].status == "applied"


def test_invalid_rewrite_is_rejected_by_the_checker():
    model = conv_relu_model()
    fixed, report = run_passes(model, [BreakGraph()])
    assert report.rejected[0].name == "break-graph"
    assert "invalid" in report.rejected[0].reason
    assert op_histogram(fixed) == op_histogram(model)


class AlwaysChanges(Pass):
    name = "always-changes"
    fixes = "nothing"

    def apply(self, graph, ctx):
        graph.nodes[0].name = graph.nodes[0].name + "x"
        return PassResult(changed=1)


def test_fixed_point_is_capped():
    _, report = run_passes(conv_relu_model(), [AlwaysChanges()], max_rounds=3)
    assert report.rounds == 3 and len(report.records) == 3


class RecordingGate:
    """Test-only: a gate that logs when the pipeline asks whether it can compare and when it checks."""

    def __init__(self, log: list[str], unavailable: str = "") -> None:
        self.log, self._unavailable = log, unavailable

    @property
    def unavailable(self) -> str:
        self.log.append("asked")
        return self._unavailable

    def check(self, model) -> str:
        self.log.append("check")
        return ""


class Logs(Pass):
    name = "logs"
    fixes = "nothing"

    def __init__(self, log: list[str], changes: bool) -> None:
        self.log, self.changes = log, changes

    def apply(self, graph, ctx):
        self.log.append("apply")
        if self.changes:
            graph.nodes[0].name = graph.nodes[0].name + "x"
        return PassResult(changed=int(self.changes))


def test_a_pass_is_not_run_again_on_the_graph_it_found_nothing_to_change_on():
    # round 1: first changes, second finds nothing; round 2: first finds nothing, and the graph is still
    # the one second found nothing on, so second does not run; no round 3
    log_first, log_second = [], []

    class ChangesOnce(Logs):
        name = "changes-once"

        def apply(self, graph, ctx):
            result = super().apply(graph, ctx)
            self.changes = False
            return result

    first, second = ChangesOnce(log_first, changes=True), Logs(log_second, changes=False)
    _, report = run_passes(conv_relu_model(), [first, second], verify=False)
    assert log_first == ["apply", "apply"] and log_second == ["apply"]
    assert report.rounds == 2 and [r.name for r in report.records] == ["changes-once"]


def test_a_pass_runs_again_once_an_other_pass_changed_the_graph():
    log_first, log_second = [], []
    _, report = run_passes(conv_relu_model(), [Logs(log_first, changes=False), AlwaysChanges()],
                           verify=False, max_rounds=3)
    assert log_first == ["apply"] * 3 and report.rounds == 3


def test_the_gate_is_asked_whether_it_can_compare_only_when_the_first_check_is_due():
    # A gate may still be taking its references in the background while the first round runs.
    from onnxmend.passes.infra.manager import run_passes as run_pipeline

    log: list[str] = []
    _, report = run_pipeline(conv_relu_model(), [Logs(log, changes=True)], gate=RecordingGate(log), max_rounds=1)
    assert log == ["apply", "asked", "check"] and report.verified
    log.clear()
    _, report = run_pipeline(conv_relu_model(), [Logs(log, changes=False)], gate=RecordingGate(log))
    assert log == ["apply", "asked"] and report.verified  # nothing to check: asked once, at the end
    log.clear()
    _, report = run_pipeline(conv_relu_model(), [Logs(log, changes=True)], gate=RecordingGate(log, "no references"),
                             max_rounds=2)
    assert log == ["apply", "apply", "asked"] and not report.verified  # asked once, never checked
    assert report.unverified_reason == "no references" and report.notes["gate"] == ["no references"]


def test_interface_change_is_recorded_and_the_gate_feeds_the_new_layout():
    model = conv_relu_model()
    fixed, report = run_passes(model, [TransposeInput()])
    assert report.rejected == [], report.rejected
    interface = read_interface(fixed)
    assert interface == {"x": {"kind": "input", "perm": [0, 2, 3, 1], "was": "NCHW", "now": "NHWC"}}
    feeds = {"x": np.random.default_rng(2).standard_normal((1, 3, 8, 8)).astype(np.float32)}
    adapted = adapt_feeds(feeds, fixed)
    assert adapted["x"].shape == (1, 8, 8, 3)
    out = restore_outputs(_run_model(fixed, adapted), fixed)
    np.testing.assert_array_equal(out["y"], _run_model(model, feeds)["y"])


def test_input_graph_onnxruntime_cannot_run_is_fixed_without_numeric_gate():
    # ORT refuses a dilated Conv with auto_pad=SAME_UPPER; resolve-auto-pad makes it runnable.
    from onnxmend.passes.padding.resolve_auto_pad import ResolveAutoPad
    from tests.builders import init as const

    w = np.random.default_rng(0).standard_normal((2, 1, 3, 3)).astype(np.float32)
    node = helper.make_node("Conv", ["x", "W"], ["y"], auto_pad="SAME_UPPER", dilations=[2, 2], strides=[1, 1])
    model = make_model([node], [value("x", [1, 1, 9, 9])], [value("y", [1, 2, 9, 9])], [const("W", w)])
    fixed, report = run_passes(model, [ResolveAutoPad()])
    assert not report.verified
    assert report.notes["gate"][0].startswith("the input graph cannot run at any input size tried (")
    assert report.unverified_reason == report.notes["gate"][0]
    assert report.records[0].status == "applied"
    create_session(fixed, provider="cpu", opt_level="disable").run({"x": np.ones((1, 1, 9, 9), np.float32)})


def test_fix_preset_also_folds_the_per_channel_add_into_the_conv():
    model = conv_relu_model()
    fixed, report = run_passes(model, resolve("fix"))
    assert op_histogram(fixed) == {"Conv": 1, "Relu": 1}
    assert report.rejected == []
    feeds = {"x": np.random.default_rng(1).standard_normal((1, 3, 8, 8)).astype(np.float32)}
    np.testing.assert_allclose(_run_model(model, feeds)["y"], _run_model(fixed, feeds)["y"], rtol=1e-6, atol=1e-6)


class GiveUp(Pass):
    """Rewrites the graph, then gives up and asks for it to be dropped."""

    name = "give-up"
    fixes = "test"

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        for node in graph.nodes:
            if node.op == "Relu":
                node.op = "Sigmoid"
        result = PassResult(discard=True)
        result.skip("graph", "gave up")
        return result


class CountRelu(Pass):
    """Changes nothing; records how many Relu nodes the graph it was handed has."""

    name = "count-relu"
    fixes = "test"
    seen: list[int] = []

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        CountRelu.seen.append(sum(n.op == "Relu" for n in graph.nodes))
        return PassResult()


def test_a_discarded_rewrite_leaves_the_model_and_the_next_pass_sees_the_original():
    CountRelu.seen = []
    model = conv_relu_model()
    out, report = run_passes(model, [GiveUp(), CountRelu()], verify=True)
    assert report.records == [] and [s.reason for s in report.skipped["give-up"]] == ["gave up"]
    assert op_histogram(out) == op_histogram(model)
    assert CountRelu.seen == [1]


class Raises(Pass):
    name = "raises"
    fixes = "nothing; it raises halfway through a rewrite"

    def apply(self, graph, ctx):
        graph.nodes[0].op = "Sigmoid"  # a partial edit that must not survive
        raise KeyError("the matcher indexed a node that is not there")


def test_a_pass_that_raises_is_rejected_named_and_rolled_back():
    model = conv_relu_model()
    fixed, report = run_passes(model, [Raises(), RemoveIdentity()])
    (rejected,) = report.rejected
    assert rejected.name == "raises"
    assert rejected.reason == "the pass raised KeyError: 'the matcher indexed a node that is not there'"
    assert "Sigmoid" not in op_histogram(fixed)  # the partial edit was dropped with the graph
    assert [r.name for r in report.records if r.status == "applied"] == ["remove-identity"]
    assert [r.round for r in report.rejected] == [1]  # disabled after its first failure


class NeedsOpset99(Pass):
    name = "needs-opset-99"
    fixes = "nothing"
    calls = 0

    def requires(self, graph, ctx):
        NeedsOpset99.calls += 1
        return f"the graph is at opset {ctx.opset}, this pass needs 99"

    def apply(self, graph, ctx):  # pragma: no cover - must never run
        raise AssertionError("a pass whose precondition failed was run")


def test_a_failed_precondition_is_checked_once_reported_and_the_pass_never_runs():
    NeedsOpset99.calls = 0
    _, report = run_passes(conv_relu_model(), [NeedsOpset99(), AlwaysChanges()], max_rounds=3)
    assert NeedsOpset99.calls == 1
    assert report.not_run == {"needs-opset-99": "the graph is at opset 17, this pass needs 99"}
    assert all(r.name != "needs-opset-99" for r in report.records)
    assert report.to_json()["not_run"] == report.not_run
