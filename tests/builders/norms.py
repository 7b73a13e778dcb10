"""Decomposed LayerNorm spellings the norm-pass tests share (hand-written, torch-like, tf2onnx-folded)."""

from __future__ import annotations

import io
import warnings

import numpy as np
import onnx
from onnx import TensorProto, version_converter

from onnxmend.core.deps import require
from tests.builders import const, make_model, node, rand

F32, F16 = TensorProto.FLOAT, TensorProto.FLOAT16


def decomposed_ln(
    shape=(2, 5, 8), axes=(-1,), mean="attr", var="pow", rsqrt="div", affine="full", eps=1e-5,
    gamma_shape=None, opset=17, eps_input=False,
) -> onnx.ModelProto:
    """A hand-written LayerNorm in one of its spellings."""
    inits = {"two": const(2.0), "half": const(-0.5)}
    if not eps_input:
        inits["eps"] = const(eps)
    norm_shape = tuple(shape[a] for a in axes)
    if mean == "input":
        inits["axes"] = np.asarray(axes, np.int64)

    def reduce(op: str, src: str, dst: str) -> onnx.NodeProto:
        if mean == "gap" and op == "ReduceMean":
            return node("GlobalAveragePool", [src], dst)
        if mean == "input":
            return node(op, [src, "axes"], dst)
        return node(op, [src], dst, axes=list(axes))

    nodes = [reduce("ReduceMean", "x", "mean"), node("Sub", ["x", "mean"], "d")]
    if var == "sumsq":
        inits["count"] = const(float(np.prod(norm_shape)))
        nodes += [reduce("ReduceSumSquare", "d", "ss"), node("Div", ["ss", "count"], "var")]
    else:
        nodes += [node("Pow", ["d", "two"], "sq") if var == "pow" else node("Mul", ["d", "d"], "sq"),
                  reduce("ReduceMean", "sq", "var")]
    nodes.append(node("Add", ["var", "eps"], "ve"))
    if rsqrt == "div":
        nodes += [node("Sqrt", ["ve"], "std"), node("Div", ["d", "std"], "n")]
    elif rsqrt == "recip":
        nodes += [node("Sqrt", ["ve"], "std"), node("Reciprocal", ["std"], "r"), node("Mul", ["d", "r"], "n")]
    else:
        nodes += [node("Pow", ["ve", "half"], "r"), node("Mul", ["d", "r"], "n")]
    out = "n"
    if affine in ("full", "scale"):
        inits["gamma"] = rand(gamma_shape or norm_shape, seed=2)
        nodes.append(node("Mul", ["n", "gamma"], "g"))
        out = "g"
    if affine == "full":
        inits["beta"] = rand(norm_shape, seed=3)
        nodes.append(node("Add", ["g", "beta"], "y"))
        out = "y"
    inputs = {"x": (shape, F32)}
    if eps_input:
        inputs["eps"] = ((), F32)
    return make_model(nodes, inputs, [out], inits, opset=opset)


def tf_folded_ln(shape=(2, 3, 3, 4), axes=(-1,), form="neg", gamma_shape=None) -> onnx.ModelProto:
    """tf.nn.batch_normalization as tf2onnx writes keras LayerNormalization: x·s + (β − mean·s)."""
    norm_shape = tuple(shape[a] for a in axes)
    inits = {"eps": const(1e-3), "gamma": rand(gamma_shape or norm_shape, 2), "beta": rand(gamma_shape or norm_shape, 3)}
    nodes = [
        node("ReduceMean", ["x"], "mean", axes=list(axes)), node("Sub", ["x", "mean"], "d"),
        node("Mul", ["d", "d"], "sq"), node("ReduceMean", ["sq"], "var", axes=list(axes)),
        node("Add", ["var", "eps"], "ve"), node("Sqrt", ["ve"], "std"), node("Reciprocal", ["std"], "r"),
        node("Mul", ["r", "gamma"], "s"), node("Mul", ["x", "s"], "xs"),
    ]
    if form == "neg":
        nodes += [node("Neg", ["mean"], "nm"), node("Mul", ["nm", "s"], "ms"), node("Add", ["ms", "beta"], "c")]
    else:
        nodes += [node("Mul", ["mean", "s"], "ms"), node("Sub", ["beta", "ms"], "c")]
    nodes.append(node("Add", ["xs", "c"], "y"))
    return make_model(nodes, {"x": (shape, F32)}, ["y"], inits)


def at_opset(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """The same graph declared at another opset (for old-opset must-not-fire cases)."""
    model.opset_import[0].version = opset
    return model


def torch_export(module, shape: tuple[int, ...], opset: int, dynamo: bool) -> onnx.ModelProto:
    """``module`` (parameters drawn from N(0.5, 0.3), seed 0) exported by the dynamo or legacy exporter."""
    torch = require("torch")
    torch.manual_seed(0)
    for p in module.parameters():
        torch.nn.init.normal_(p, 0.5, 0.3)
    x = torch.randn(*shape)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if dynamo:
            return torch.onnx.export(module.eval(), (x,), dynamo=True, opset_version=opset, verbose=False).model_proto
        buffer = io.BytesIO()
        torch.onnx.export(module.eval(), (x,), buffer, dynamo=False, opset_version=opset)
    return onnx.load_from_string(buffer.getvalue())


def converted_to(model: onnx.ModelProto, opset: int) -> onnx.ModelProto:
    """``model`` converted to ``opset`` by onnx's version converter, shapes inferred."""
    return onnx.shape_inference.infer_shapes(version_converter.convert_version(model, opset))
