"""Provenance hints read from what each exporter leaves on a node, and the absorbed records."""

from __future__ import annotations

import onnx
from onnx import helper

from onnxmend.core.provenance import (
    ABSORBED_KEY,
    PROVENANCE_KEY,
    exporter_absorbed,
    exporter_hints,
    recorded_absorbed,
    recorded_hints,
    single_use_initializers,
    write_list,
)
from tests.builders import conv_relu_model


def _node(name: str, op: str = "Conv", inputs=("x", "w"), **meta: str) -> onnx.NodeProto:
    n = helper.make_node(op, list(inputs), ["y"], name=name)
    for key, value in meta.items():
        n.metadata_props.add(key=key.replace("__", "."), value=value)
    return n


def test_dynamo_name_scopes_give_the_module_path_and_weights_the_folded_conv() -> None:
    n = _node("node_Conv_809", inputs=("x", "features.0.0.weight", "b"),
              pkg__torch__onnx__name_scopes="['', 'features', 'features.0', 'features.0.1', '_native_batch_norm']")
    assert exporter_hints(n, {"features.0.0.weight"}) == ["features.0.1", "features.0.0"]
    # a weight read by several nodes names no one layer
    assert exporter_hints(n, set()) == ["features.0.1"]


def test_dynamo_namespace_is_the_fallback_and_root_ops_have_no_module() -> None:
    n = _node("n", namespace=": Net/conv: torch.nn.Conv2d/conv2d: aten.conv2d.default")
    assert exporter_hints(n) == ["conv"]
    assert exporter_hints(_node("n", pkg__torch__onnx__name_scopes="['', 'view']")) == []


def test_legacy_scoped_names_rebuild_the_module_path() -> None:
    assert exporter_hints(_node("/features/features.1/body/body.0/body.0.0/Conv")) == ["features.1.body.0.0"]
    assert exporter_hints(_node("/features/features.0/features.0.2/Clip", "Clip")) == ["features.0.2"]
    assert exporter_hints(_node("/Flatten", "Flatten")) == []


def test_tf2onnx_scopes_drop_the_op_and_weights_name_the_folded_bn() -> None:
    n = _node("Conv__54", inputs=("x", "bn_stack_1/conv0_1/convolution/merged_input:0", "bn_stack_1/bn0_1/batchnorm/sub:0"))
    weights = {"bn_stack_1/conv0_1/convolution/merged_input:0", "bn_stack_1/bn0_1/batchnorm/sub:0"}
    assert exporter_hints(n, weights) == ["bn_stack_1/conv0_1/convolution", "bn_stack_1/bn0_1/batchnorm"]
    assert exporter_hints(_node("bn_stack_1/relu0_1/Relu", "Relu")) == ["bn_stack_1/relu0_1"]
    # a keras.ops call right under the model's scope is named after its op
    assert exporter_hints(_node("convnext_tiny_1/Add_1", "Add")) == ["convnext_tiny_1/op:add_1"]


def test_malformed_metadata_is_ignored() -> None:
    n = _node("n", pkg__torch__onnx__name_scopes="[not python", onnxmend__provenance="{not json")
    assert exporter_hints(n) == []
    assert recorded_hints(n) is None


def test_the_dynamo_optimizer_merged_bn_keeps_epsilon_and_momentum() -> None:
    fx = ("%bn : [num_users=1] = call_function[target=torch.ops.aten._native_batch_norm_legit_no_training.default]"
          "(args = (%conv2d, %p_w, %p_b, %b_mean, %b_var, 0.1, 1e-05), kwargs = {})")
    n = _node("c", pkg__torch__onnx__fx_node=fx, pkg__onnxscript__rewriter__rule_name="FuseBatchNormIntoConv")
    assert exporter_absorbed(n) == [{"op": "BatchNormalization", "epsilon": 1e-05, "momentum": 0.9,
                                     "via": "torch.onnx optimizer"}]
    assert exporter_absorbed(_node("c", pkg__torch__onnx__fx_node=fx)) == []  # no merge rule: nothing absorbed


def test_recorded_lists_round_trip_and_empty_removes() -> None:
    n = _node("n")
    write_list(n, PROVENANCE_KEY, ["a", "b"])
    write_list(n, ABSORBED_KEY, [{"op": "BatchNormalization", "epsilon": 0.001}])
    assert recorded_hints(n) == ["a", "b"]
    assert recorded_absorbed(n) == [{"op": "BatchNormalization", "epsilon": 0.001}]
    write_list(n, PROVENANCE_KEY, [])
    assert recorded_hints(n) is None and len(n.metadata_props) == 1


def test_single_use_initializers() -> None:
    model = conv_relu_model()
    used = single_use_initializers(model)
    assert used == {t.name for t in model.graph.initializer}
