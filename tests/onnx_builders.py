"""Tiny ONNX graphs built in code for the core tests (no checked-in binaries)."""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def make_model(nodes, inputs, outputs, initializers=(), opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(list(nodes), "test", list(inputs), list(outputs), list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def value(name: str, shape, dtype=TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, dtype, shape)


def const(name: str, array) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array), name)


def seeded_feeds(model: onnx.ModelProto, seed: int = 0, scale: float = 1.0, shift: float = 0.0) -> dict[str, np.ndarray]:
    """Normal(shift, scale) values of each graph input's own dtype and static shape."""
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


def run_outputs(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The graph's outputs in order, from onnxruntime with its own optimisations off."""
    from onnxmend.runtime.session import create_session

    outs = create_session(model, provider="cpu", opt_level="disable").run(feeds)
    return [np.asarray(outs[o.name]) for o in model.graph.output]


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
        helper.make_node("Constant", [], ["dead"], value=const("dead_value", np.ones(3, np.float32))),
    ]
    return make_model(
        nodes, [value("x", [1, 3, 8, 8])], [value("y", [1, 4, 8, 8])],
        [const("W", w), const("B", b), const("B2", b.reshape(4, 1, 1).copy())],
    )


def run_pipeline(model, passes, ctx=None, verify: bool = True, **kwargs):
    """``run_passes`` the way a flow calls it: with the numeric gate when ``verify``."""
    from onnxmend.passes.infra.manager import run_passes
    from onnxmend.runtime.gate import NumericGate

    return run_passes(model, passes, ctx, gate=NumericGate(model) if verify else None, **kwargs)


def candidates(model, p, **context):
    """What pass ``p`` would change on ``model``, as ``inspect`` asks it."""
    import onnx_graphsurgeon as gs

    from onnxmend.core.graph import infer_shapes, model_opset
    from onnxmend.passes.infra.base import PassContext

    return p.candidates(gs.import_onnx(infer_shapes(model)), PassContext(opset=model_opset(model), **context))
