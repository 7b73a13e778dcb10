"""An ONNX file as the source: its nodes are the layers, and a tensor both graphs still hold is a point.

For ``model.onnx`` sources (pass-through) the source runner is onnxruntime on the untouched file, which
captures by tensor name. A rewritten graph keeps the names of the tensors its passes did not touch, so
every original node whose output survives is compared there; a node whose weights were folded into
another (a BatchNormalization into its Conv) answers with the survivor that replaced its output.
"""

from __future__ import annotations

import onnx

from onnxmend.runtime.layers.graph import SourceGraph, SourceLayer
from onnxmend.runtime.layers.mapping import LayerMap, LayerPoint

_WEIGHTED = {"Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization", "LayerNormalization",
             "GroupNormalization", "InstanceNormalization"}


def onnx_graph(model: onnx.ModelProto) -> SourceGraph:
    """The original graph's nodes as layers, keyed by their first output tensor."""
    inits = {t.name: tuple(int(d) for d in t.dims) for t in model.graph.initializer}
    layers = []
    for node in model.graph.node:
        if not node.output or node.op_type == "Constant":
            continue
        params = tuple((n, inits[n]) for n in node.input[1:] if n in inits) if node.op_type in _WEIGHTED else ()
        layers.append(SourceLayer(node.output[0], node.op_type, len(layers), params))
    return SourceGraph("onnx", layers, channels_last=False)


def map_by_tensor_names(model: onnx.ModelProto, graph: SourceGraph) -> LayerMap:
    produced = {out: node for node in model.graph.node for out in node.output}
    points, pending = [], []
    for layer in graph.layers:
        pending.append(layer.name)
        node = produced.get(layer.name)
        if node is None:
            continue
        points.append(LayerPoint(tuple(pending), layer.name, (node.name or node.op_type,), via="tensor name"))
        pending = []
    covered = {n for p in points for n in p.layers}
    unmapped = [layer.name for layer in graph.layers if layer.has_weights and layer.name not in covered]
    return LayerMap(points, unmapped, [], sum(1 for layer in graph.layers if layer.has_weights))
