"""Provenance through the pipeline: every node a pass of any family leaves answers for source layers, the
hints never grow beyond the input's, and fused/folded nodes answer for everything they replaced."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from onnxmend.core.provenance import PROVENANCE_KEY, recorded_absorbed, recorded_hints, write_list
from onnxmend.passes.activations.fuse_gelu import FuseGelu
from onnxmend.passes.cleanup.remove_identity import RemoveIdentity
from onnxmend.passes.folding.fold_batch_norm import FoldBatchNorm
from onnxmend.passes.infra.base import Pass
from onnxmend.passes.layout.push_transposes import PushTransposes
from onnxmend.passes.norms.fuse_layer_norm import FuseLayerNorm
from onnxmend.passes.padding.fold_pad import FoldPad
from tests.builders import const, conv_relu_model, make_model, node, rand, run_passes
from tests.builders.layout import sandwich
from tests.builders.norms import decomposed_ln

F32 = TensorProto.FLOAT


def labelled(model: onnx.ModelProto) -> onnx.ModelProto:
    """Every node named after its output and answering for layer ``L:<output>``."""
    for n in model.graph.node:
        n.name = n.name or n.output[0]
        write_list(n, PROVENANCE_KEY, [f"L:{n.output[0]}"])
    return model


def conv_bn() -> onnx.ModelProto:
    c = 4
    inits = {"w": rand((c, 3, 3, 3), seed=1), "g": rand((c,), seed=2) + 1.0, "b": rand((c,), seed=3),
             "m": rand((c,), seed=4), "v": np.abs(rand((c,), seed=5)) + 0.5}
    nodes = [node("Conv", ["x", "w"], "c", pads=[1, 1, 1, 1]),
             node("BatchNormalization", ["c", "g", "b", "m", "v"], "y", epsilon=1e-3, momentum=0.99)]
    return make_model(nodes, {"x": ((1, 3, 8, 8), F32)}, ["y"], inits)


def pad_conv() -> onnx.ModelProto:
    inits = {"pads": np.asarray([0, 0, 0, 1, 0, 0, 1, 0], np.int64), "w": rand((4, 3, 3, 3), seed=1)}
    nodes = [node("Pad", ["x", "pads"], "p"), node("Conv", ["p", "w"], "y", strides=[2, 2])]
    return make_model(nodes, {"x": ((1, 3, 8, 8), F32)}, ["y"], inits)


def gelu() -> onnx.ModelProto:
    inits = {"one": const(1.0), "half": const(0.5), "s2": const(1.4142)}
    nodes = [node("Div", ["x", "s2"], "z"), node("Erf", ["z"], "e"), node("Add", ["e", "one"], "a"),
             node("Mul", ["x", "a"], "xa"), node("Mul", ["xa", "half"], "y")]
    return make_model(nodes, {"x": ((2, 16), F32)}, ["y"], inits, opset=20)


FAMILIES: dict[str, tuple[Pass, object]] = {
    "cleanup": (RemoveIdentity(), conv_relu_model),
    "padding": (FoldPad(), pad_conv),
    "layout": (PushTransposes(), lambda: sandwich([node("Relu", ["y"], "z")])),
    "folding": (FoldBatchNorm(), conv_bn),
    "norms": (FuseLayerNorm(), decomposed_ln),
    "activations": (FuseGelu(), gelu),
}


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_every_node_left_by_a_pass_answers_for_source_layers(family: str) -> None:
    p, build = FAMILIES[family]
    model = labelled(build())  # type: ignore[operator]
    before = {h for n in model.graph.node for h in recorded_hints(n) or []}
    out, report = run_passes(model, [p], verify=False)
    assert any(r.name == p.name and r.changed for r in report.records), report.records
    for n in out.graph.node:
        hints = recorded_hints(n)
        if n.op_type != "Constant":
            assert hints, f"{n.op_type} {n.name} lost its provenance"
        assert set(hints or []) <= before


def test_a_folded_batchnorm_leaves_the_conv_answering_for_both_with_its_epsilon() -> None:
    out, _ = run_passes(labelled(conv_bn()), [FoldBatchNorm()], verify=False)
    (conv,) = [n for n in out.graph.node if n.op_type == "Conv"]
    assert set(recorded_hints(conv) or []) == {"L:c", "L:y"}
    (bn,) = recorded_absorbed(conv)
    assert bn["op"] == "BatchNormalization" and bn["epsilon"] == pytest.approx(1e-3) and bn["momentum"] == pytest.approx(0.99)


def test_a_fused_layernorm_answers_for_every_node_it_replaced() -> None:
    model = labelled(decomposed_ln(axes=(-1,)))
    decomposed = {h for n in model.graph.node for h in recorded_hints(n) or []}
    out, _ = run_passes(model, [FuseLayerNorm()], verify=False)
    (ln,) = [n for n in out.graph.node if n.op_type == "LayerNormalization"]
    assert set(recorded_hints(ln) or []) == decomposed
    assert [(a["op"], a["axes"]) for a in recorded_absorbed(ln)] == [("ReduceMean", [-1])] * 2


def test_a_sweep_pass_that_rewrites_nodes_keeps_their_hints_by_output_name() -> None:
    # push-transposes is not a MatchingPass: the Relu it keeps answers for its old layer
    out, _ = run_passes(labelled(sandwich([node("Relu", ["y"], "z")])), [PushTransposes()], verify=False)
    (relu,) = [n for n in out.graph.node if n.op_type == "Relu"]
    assert recorded_hints(relu) == ["L:z"]


def test_a_transpose_pushed_down_a_chain_answers_for_the_tensor_it_writes_not_for_where_it_started() -> None:
    # the Transpose moves below Relu, then below Sigmoid (push-transposes moves the one node): it ends up
    # writing z, so it answers for z's writer, as a Transpose made there would; the ops keep their own
    chain = [node("Relu", ["y"], "r"), node("Sigmoid", ["r"], "z")]
    m = labelled(make_model([node("Transpose", ["x"], "y", perm=[0, 2, 3, 1]), *chain],
                            {"x": ((1, 3, 4, 5), F32)}, ["z"]))
    out, _ = run_passes(m, [PushTransposes()], verify=False)
    assert [n.op_type for n in out.graph.node] == ["Relu", "Sigmoid", "Transpose"]
    assert [recorded_hints(n) for n in out.graph.node] == [["L:r"], ["L:z"], ["L:z"]]

