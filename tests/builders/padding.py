"""Builders and checks the padding-pass tests share: an ``x``-input graph, weight/int/scalar initializers,
one ORT run, the pipeline with named passes, and skip-reason assertions."""

from __future__ import annotations

import re

import numpy as np
import onnx
from onnx import helper, numpy_helper

from onnxmend.passes.infra.base import Pass, PassContext
from onnxmend.runtime.session import create_session
from tests.builders import make_model, run_passes, value

RNG_SEED = 0


def x_model(nodes, x_shape, inits=(), opset=17, extra_inputs=()) -> onnx.ModelProto:
    """A graph with one float input ``x`` of ``x_shape`` (plus ``extra_inputs``) and one rank-4 output ``y``."""
    return make_model(nodes, [value("x", x_shape), *extra_inputs], [value("y", [None] * 4)], list(inits), opset)


def weight(name: str, shape, seed: int = RNG_SEED) -> onnx.TensorProto:
    return numpy_helper.from_array(np.random.default_rng(seed).standard_normal(shape).astype(np.float32), name)


def ints(name: str, values) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(values, dtype=np.int64), name)


def scalar(name: str, value: float) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(value, dtype=np.float32), name)


def feeds_for(shape, seed: int = 1) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(seed).standard_normal(shape).astype(np.float32)}


def ort(model: onnx.ModelProto, feeds) -> np.ndarray:
    session = create_session(model, provider="cpu", opt_level="disable")
    return session.run(feeds)[session.output_names[0]]


def pipeline(model: onnx.ModelProto, *passes: Pass, preset: str = "fix", verify: bool = False):
    """Run ``passes`` through the manager (gated when ``verify``) and check the result."""
    ctx = PassContext(opset=next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), preset=preset)
    out, report = run_passes(model, list(passes), ctx=ctx, verify=verify)
    onnx.checker.check_model(out)
    return out, report


def changed(report) -> int:
    return sum(r.changed for r in report.records if r.status == "applied")


def reasons(report, name: str) -> list[str]:
    return [s.reason for s in report.skipped.get(name, [])]


def assert_skipped(report, name: str, pattern: str) -> None:
    found = reasons(report, name)
    assert any(re.search(pattern, r) for r in found), f"no skip matching {pattern!r} in {found}"


def find_node(model: onnx.ModelProto, op: str) -> onnx.NodeProto:
    """The first node of type ``op``."""
    return next(n for n in model.graph.node if n.op_type == op)


def attr(n: onnx.NodeProto, name: str, default=None):
    found = [a for a in n.attribute if a.name == name]
    return helper.get_attribute_value(found[0]) if found else default


def assert_exact_and_idempotent(before, after, x_shape, p: Pass, preset: str = "fix") -> None:
    feeds = feeds_for(x_shape)
    np.testing.assert_array_equal(ort(before, feeds), ort(after, feeds))
    _, again = pipeline(after, p, preset=preset)
    assert changed(again) == 0
