"""Builders shared by the layout-pass tests: tiny onnx.helper graphs, the pass run, and ORT comparisons."""

from __future__ import annotations

import collections
from typing import Sequence

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from onnx import TensorProto, helper

from onnxmend.passes.infra.base import Pass, PassContext, PassResult
from tests.onnx_builders import run_outputs, seeded_feeds

F = TensorProto.FLOAT


def tensor(name: str, shape: Sequence[int], dtype: int = F) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, list(shape))


def init(name: str, values: np.ndarray) -> onnx.TensorProto:
    return onnx.numpy_helper.from_array(np.asarray(values), name)


def transpose(src: str, dst: str, perm: Sequence[int]) -> onnx.NodeProto:
    return helper.make_node("Transpose", [src], [dst], perm=list(perm))


def model(
    nodes: list[onnx.NodeProto], inputs: list[onnx.ValueInfoProto], outputs: list[onnx.ValueInfoProto],
    inits: Sequence[onnx.TensorProto] = (), opset: int = 17,
) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "layout_test", inputs, outputs, list(inits))
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    m.ir_version = 8 if opset < 21 else 10
    onnx.checker.check_model(m)
    return onnx.shape_inference.infer_shapes(m)


def apply(m: onnx.ModelProto, p: Pass, layout: str = "keep") -> tuple[onnx.ModelProto, PassResult]:
    """Run one pass the way the manager does (import, apply, cleanup, export) and check the result."""
    graph = gs.import_onnx(m)
    ctx = PassContext(opset=next(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")), layout=layout)
    result = p.apply(graph, ctx)
    if result.discard:  # the pass gave up: the manager keeps the model as it was
        return m, result
    graph.cleanup(remove_unused_graph_inputs=False).toposort()
    out = gs.export_onnx(graph, do_type_check=False)
    out.ir_version = m.ir_version
    onnx.checker.check_model(out)
    out = onnx.shape_inference.infer_shapes(out, check_type=True, strict_mode=True)
    return out, result


def ops(m: onnx.ModelProto) -> collections.Counter[str]:
    return collections.Counter(n.op_type for n in m.graph.node)


def feeds_for(m: onnx.ModelProto, seed: int = 0) -> dict[str, np.ndarray]:
    return seeded_feeds(m, seed)


run = run_outputs


def assert_same(before: onnx.ModelProto, after: onnx.ModelProto, exact: bool = True, seed: int = 0) -> None:
    feeds = feeds_for(before, seed)
    assert [o.name for o in before.graph.output] == [o.name for o in after.graph.output]
    for ref, act in zip(run(before, feeds), run(after, feeds)):
        assert ref.shape == act.shape and ref.dtype == act.dtype
        if exact:
            np.testing.assert_array_equal(act, ref)
        else:
            np.testing.assert_allclose(act, ref, rtol=1e-5, atol=1e-6)
