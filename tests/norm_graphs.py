"""Builders and runners shared by the norm-pass tests: decomposed norms spelled with onnx.helper."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from onnx import TensorProto, helper, numpy_helper

from onnxmend.passes.infra.base import Pass, PassContext, PassResult
from onnxmend.core.graph import model_opset
from tests.onnx_builders import run_outputs, seeded_feeds

RNG_SEED = 0


def make_model(
    nodes: Sequence[onnx.NodeProto],
    inputs: dict[str, tuple[tuple[int, ...], int]],
    outputs: Sequence[str],
    inits: dict[str, np.ndarray] | None = None,
    opset: int = 17,
) -> onnx.ModelProto:
    graph = helper.make_graph(
        list(nodes), "g",
        [helper.make_tensor_value_info(n, dt, shape) for n, (shape, dt) in inputs.items()],
        [helper.make_tensor_value_info(n, TensorProto.UNDEFINED, None) for n in outputs],
        [numpy_helper.from_array(np.asarray(v), k) for k, v in (inits or {}).items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset < 19 else 10
    model = onnx.shape_inference.infer_shapes(model)
    inferred = {vi.name: vi for vi in model.graph.value_info}
    for out in model.graph.output:
        if out.name in inferred:
            out.type.CopyFrom(inferred[out.name].type)
        elif out.type.tensor_type.elem_type == TensorProto.UNDEFINED:  # ops without inference: shape of x
            out.type.CopyFrom(model.graph.input[0].type)
    return model


def node(op: str, inputs: Sequence[str], output: str | Sequence[str], **attrs) -> onnx.NodeProto:
    outs = [output] if isinstance(output, str) else list(output)
    return helper.make_node(op, list(inputs), outs, name=f"{op}_{outs[0]}", **attrs)


def apply(model: onnx.ModelProto, p: Pass, opset: int | None = None, framework: str = "onnx",
          **context) -> tuple[onnx.ModelProto, PassResult]:
    """Run one pass like the manager does (import, apply, cleanup, export, check, infer)."""
    model = onnx.shape_inference.infer_shapes(model)
    graph = gs.import_onnx(model)
    result = p.apply(graph, PassContext(opset=opset or model_opset(model), framework=framework, **context))
    graph.cleanup(remove_unused_graph_inputs=False).toposort()
    out = gs.export_onnx(graph, do_type_check=False)
    out.ir_version = model.ir_version
    onnx.checker.check_model(out, full_check=True)
    return onnx.shape_inference.infer_shapes(out, strict_mode=True), result


def ops(model: onnx.ModelProto) -> list[str]:
    return sorted(n.op_type for n in model.graph.node)


def feeds_for(model: onnx.ModelProto, seed: int = RNG_SEED) -> dict[str, np.ndarray]:
    return seeded_feeds(model, seed, scale=2.0, shift=0.5)


run = run_outputs


def assert_same(a: onnx.ModelProto, b: onnx.ModelProto, atol: float = 0.0, rtol: float = 0.0) -> None:
    feeds = feeds_for(a)
    for x, y in zip(run(a, feeds), run(b, feeds)):
        np.testing.assert_allclose(y.astype(np.float64), x.astype(np.float64), atol=atol, rtol=rtol)


def const(value: float | Sequence[float] | np.ndarray, dtype=np.float32) -> np.ndarray:
    return np.asarray(value, dtype=dtype)


def rand(shape: Sequence[int], seed: int = 1, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)
