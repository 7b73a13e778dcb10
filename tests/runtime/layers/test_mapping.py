"""Points from provenance: grouping of fused layers, the tensor that leaves a layer, TensorFlow scope
resolution, exporter-folded layers inferred, unmapped layers listed with coverage."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto

from onnxmend.core.provenance import PROVENANCE_KEY, write_list
from onnxmend.runtime.layers.graph import SourceGraph, SourceLayer
from onnxmend.runtime.layers.mapping import Resolver, map_by_provenance
from tests.builders import make_model, node, rand

F32 = TensorProto.FLOAT
W = (("w", (4, 4, 1, 1)),)


KINDS = {"conv": "Conv2d", "bn": "BatchNorm2d", "other": "Conv2d"}


def graph(*layers: tuple[str, bool, tuple[str, ...]], channels_last: bool = False) -> SourceGraph:
    return SourceGraph("torch", [SourceLayer(n, KINDS.get(n, "X"), i, W if weighted else (), {}, inputs)
                                 for i, (n, weighted, inputs) in enumerate(layers)], channels_last)


def chain(*hints: list[str]) -> onnx.ModelProto:
    """x → Conv → Relu → Conv → ... one node per entry, with those hints."""
    nodes, src, inits = [], "x", {}
    for i, node_hints in enumerate(hints):
        if i % 2 == 0:
            inits[f"w{i}"] = rand((4, 4, 1, 1), seed=i)
            n = node("Conv", [src, f"w{i}"], f"t{i}")
        else:
            n = node("Relu", [src], f"t{i}")
        write_list(n, PROVENANCE_KEY, node_hints)
        nodes.append(n)
        src = f"t{i}"
    return make_model(nodes, {"x": ((1, 4, 4, 4), F32)}, [src], inits)


def test_a_folded_conv_bn_is_one_point_answering_for_the_bn() -> None:
    g = graph(("conv", True, ()), ("bn", True, ("conv",)), ("relu", False, ("bn",)))
    m = map_by_provenance(chain(["bn", "conv"], ["relu"]), g)
    assert [(p.layers, p.tensor) for p in m.points] == [(("conv", "bn"), "t0"), (("relu",), "t1")]
    assert m.coverage == 1.0 and m.unmapped == []
    assert m.points[0].label == "bn (+conv)"


def test_the_tensor_is_the_last_one_leaving_the_layer() -> None:
    g = graph(("block", True, ()), ("head", True, ("block",)))
    m = map_by_provenance(chain(["block"], ["block"], ["head"]), g)
    assert [(p.answer, p.tensor) for p in m.points] == [("block", "t1"), ("head", "t2")]


def test_unmapped_weighted_layers_are_listed_and_lower_coverage() -> None:
    g = graph(("a", True, ()), ("b", True, ("a",)), ("c", True, ("b",)), ("drop", False, ("c",)))
    m = map_by_provenance(chain(["a"], [], ["c"]), g)
    assert m.unmapped == ["b"] and m.weighted == 3 and abs(m.coverage - 2 / 3) < 1e-9
    assert m.no_nodes == ["drop"]


def test_an_exporter_folded_bn_without_a_name_joins_the_conv_before_it() -> None:
    # the TorchScript exporter folds BatchNorm into Conv and keeps only the Conv's scope
    g = graph(("conv", True, ()), ("bn", True, ("conv",)), ("relu", False, ("bn",)))
    m = map_by_provenance(chain(["conv"], ["relu"]), g)
    assert m.points[0].layers == ("conv", "bn") and m.points[0].via == "inferred"
    assert m.unmapped == []


def test_a_bn_read_by_two_layers_is_not_inferred() -> None:
    g = graph(("conv", True, ()), ("bn", True, ("conv",)), ("other", True, ("conv",)))
    m = map_by_provenance(chain(["conv"], [], ["other"]), g)
    assert m.unmapped == ["bn"]


def test_tensorflow_scopes_skip_the_model_scope_and_the_tracing_suffix() -> None:
    g = graph(("depthwise", True, ()), ("pointwise", True, ()), ("block_1_pad", False, ()), ("conv_1", True, ()))
    resolve = Resolver(g)
    assert resolve("depthwise_1/pointwise_1") == "pointwise"  # the model shares a layer's name
    assert resolve("depthwise_1/depthwise_1/depthwise") == "depthwise"
    assert resolve("model_1/block_1_pad_1") == "block_1_pad"
    assert resolve("model_1/conv_1_1/convolution") == "conv_1"
    assert resolve("model_1/unknown_1") is None
    assert resolve("depthwise") == "depthwise"
    assert resolve("model_1/op:conv_1") == "conv_1" and resolve("model_1/op:conv") is None


def test_nodes_without_hints_are_not_points() -> None:
    g = graph(("a", True, ()))
    m = map_by_provenance(chain([], []), g)
    assert m.points == [] and m.unmapped == ["a"]
    assert np.isclose(m.coverage, 0.0)


def test_a_layer_partly_merged_into_a_later_node_has_no_point_of_its_own() -> None:
    # norm = Sub (kept) then Mul (folded into the conv): the Sub's output is not the norm's output
    g = graph(("norm", False, ()), ("conv", True, ("norm",)))
    m = map_by_provenance(chain(["norm"], ["conv", "norm"]), g)
    assert [(p.layers, p.tensor) for p in m.points] == [(("norm", "conv"), "t1")]
