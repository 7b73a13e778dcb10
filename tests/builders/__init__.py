"""The one place tests build ONNX graphs and run them: tiny models in code (no checked-in binaries), one
pass applied the way the manager applies it, pipelines with the numeric gate, seeded feeds, and onnxruntime
with its own optimisations off (``ORT_DISABLE_ALL``, so its fusions cannot hide ours).

Graphs of one pass family that two test modules share live beside this module (``builders.norms``).
"""

from __future__ import annotations

import collections
from typing import Mapping, Sequence, Union

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from onnx import TensorProto, helper, numpy_helper

from onnxmend.core.graph import infer_shapes, model_opset
from onnxmend.passes.infra.base import Candidates, Pass, PassContext, PassResult

F = TensorProto.FLOAT
Inputs = Union[Mapping[str, tuple[Sequence, int]], Sequence[onnx.ValueInfoProto]]
Outputs = Union[Sequence[str], Sequence[onnx.ValueInfoProto]]
Inits = Union[Mapping[str, np.ndarray], Sequence[onnx.TensorProto], None]

# ----------------------------------------------------------------------------------------------- building


def make_model(nodes: Sequence[onnx.NodeProto], inputs: Inputs, outputs: Outputs, inits: Inits = None,
               opset: int = 17, check: bool = True) -> onnx.ModelProto:
    """A model with inferred shapes, checked by the ONNX checker unless ``check`` is False (for the few
    tests that need an op the checker calls deprecated at its opset).

    ``inputs`` are value infos or ``{name: (shape, dtype)}``; ``outputs`` value infos or names (typed by
    shape inference, else like the first input); ``inits`` tensors or ``{name: array}``.
    """
    graph = helper.make_graph(list(nodes), "test", _value_infos(inputs), _outputs(outputs), _initializers(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8 if opset < 19 else 10
    model = onnx.shape_inference.infer_shapes(model)
    inferred = {vi.name: vi for vi in model.graph.value_info}
    for out in model.graph.output:
        if out.type.tensor_type.elem_type != TensorProto.UNDEFINED:
            continue
        out.type.CopyFrom(inferred[out.name].type if out.name in inferred else model.graph.input[0].type)
    if check:
        onnx.checker.check_model(model)
    return model


def _value_infos(inputs: Inputs) -> list[onnx.ValueInfoProto]:
    if isinstance(inputs, Mapping):
        return [value(n, shape, dtype) for n, (shape, dtype) in inputs.items()]
    return list(inputs)


def _outputs(outputs: Outputs) -> list[onnx.ValueInfoProto]:
    return [helper.make_tensor_value_info(o, TensorProto.UNDEFINED, None) if isinstance(o, str) else o
            for o in outputs]


def _initializers(inits: Inits) -> list[onnx.TensorProto]:
    if inits is None:
        return []
    if isinstance(inits, Mapping):
        return [init(k, v) for k, v in inits.items()]
    return list(inits)


def value(name: str, shape, dtype: int = F) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, None if shape is None else list(shape))


def init(name: str, array) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def node(op: str, inputs: Sequence[str], output: str | Sequence[str], **attrs) -> onnx.NodeProto:
    """A node named after its op and first output."""
    outs = [output] if isinstance(output, str) else list(output)
    return helper.make_node(op, list(inputs), outs, name=f"{op}_{outs[0]}", **attrs)


def transpose(src: str, dst: str, perm: Sequence[int]) -> onnx.NodeProto:
    return helper.make_node("Transpose", [src], [dst], perm=list(perm))


def const(values, dtype=np.float32) -> np.ndarray:
    return np.asarray(values, dtype=dtype)


def rand(shape: Sequence[int], seed: int = 1, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def conv_relu_model(seed: int = 0) -> onnx.ModelProto:
    """x[1,3,8,8] → Identity → Conv(W,B) → Dropout → Relu → y, with a dead Constant and a duplicate bias."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    nodes = [
        helper.make_node("Identity", ["x"], ["x_id"]),
        helper.make_node("Conv", ["x_id", "W", "B"], ["c"], pads=[1, 1, 1, 1]),
        helper.make_node("Dropout", ["c"], ["d"]),
        helper.make_node("Add", ["d", "B2"], ["a"]),
        helper.make_node("Relu", ["a"], ["y"]),
        helper.make_node("Constant", [], ["dead"], value=init("dead_value", np.ones(3, np.float32))),
    ]
    return make_model(nodes, [value("x", [1, 3, 8, 8])], [value("y", [1, 4, 8, 8])],
                      [init("W", w), init("B", b), init("B2", b.reshape(4, 1, 1).copy())])


# ------------------------------------------------------------------------------------------------ running


def seeded_feeds(model: onnx.ModelProto, seed: int = 0, scale: float = 2.0, shift: float = 0.5) -> dict[str, np.ndarray]:
    """Normal(shift, scale) values of each graph input's own dtype and static shape (a shifted, wide
    distribution, so a norm's statistics are not trivially 0 and 1)."""
    rng = np.random.default_rng(seed)
    inits = {i.name for i in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        if vi.name in inits:
            continue
        tt = vi.type.tensor_type
        shape = [d.dim_value for d in tt.shape.dim]
        feeds[vi.name] = (rng.standard_normal(shape) * scale + shift).astype(helper.tensor_dtype_to_np_dtype(tt.elem_type))
    return feeds


def run(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
    """The graph's outputs in order, from onnxruntime with its own optimisations off."""
    from onnxmend.runtime.runners import OnnxRunner

    outs = OnnxRunner(model, provider="cpu", opt_level="disable").run(feeds)
    return [np.asarray(outs[o.name]) for o in model.graph.output]


def assert_same(before: onnx.ModelProto, after: onnx.ModelProto, atol: float = 0.0, rtol: float = 0.0,
                seed: int = 0) -> None:
    """Same output names, shapes and dtypes, and values equal within ``atol``/``rtol`` (exact by default)."""
    feeds = seeded_feeds(before, seed)
    assert [o.name for o in before.graph.output] == [o.name for o in after.graph.output]
    for ref, act in zip(run(before, feeds), run(after, feeds)):
        assert ref.shape == act.shape and ref.dtype == act.dtype
        np.testing.assert_allclose(act.astype(np.float64), ref.astype(np.float64), atol=atol, rtol=rtol)


def ops(model: onnx.ModelProto) -> list[str]:
    """The op types of the graph, sorted (for exact op lists after a rewrite)."""
    return sorted(n.op_type for n in model.graph.node)


def op_counts(model: onnx.ModelProto) -> collections.Counter[str]:
    return collections.Counter(n.op_type for n in model.graph.node)


# ------------------------------------------------------------------------------------------------ passes


def context(model: onnx.ModelProto, **fields) -> PassContext:
    return PassContext(opset=fields.pop("opset", None) or model_opset(model), **fields)


def apply(model: onnx.ModelProto, p: Pass, **fields) -> tuple[onnx.ModelProto, PassResult]:
    """Run one pass the way the manager does (import, apply, cleanup, export), then check the result with
    the full ONNX checker and strict shape inference. ``fields`` are PassContext fields."""
    model = infer_shapes(model)
    graph = gs.import_onnx(model)
    result = p.apply(graph, context(model, **fields))
    if result.discard:  # the pass gave up: the manager keeps the model as it was
        return model, result
    graph.cleanup(remove_unused_graph_inputs=False).toposort()
    out = gs.export_onnx(graph, do_type_check=False)
    out.ir_version = model.ir_version
    onnx.checker.check_model(out, full_check=True)
    return onnx.shape_inference.infer_shapes(out, check_type=True, strict_mode=True), result


def candidates(model: onnx.ModelProto, p: Pass, **fields) -> Candidates:
    """What pass ``p`` would change on ``model``, as ``inspect`` asks it."""
    model = infer_shapes(model)
    return p.candidates(gs.import_onnx(model), context(model, **fields))


def run_passes(model: onnx.ModelProto, passes: Sequence[Pass], ctx: PassContext | None = None,
               verify: bool = True, **kwargs):
    """``run_passes`` the way a flow calls it: with the numeric gate unless ``verify`` is False."""
    from onnxmend.passes.infra.manager import run_passes as run_pipeline
    from onnxmend.runtime.gate import NumericGate

    return run_pipeline(model, passes, ctx, gate=NumericGate(model, background=True) if verify else None, **kwargs)
