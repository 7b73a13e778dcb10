"""Graphs and checks the layout-pass tests share: an NCHW tensor sandwiched between layout Transposes, and
the push-transposes assertions (pushed exactly and idempotently, or declined with a reason)."""

from __future__ import annotations

import re

from onnx import TensorProto

from onnxmend.passes.layout.push_transposes import PushTransposes
from tests.builders import apply, assert_same, make_model, op_counts, transpose, value

X = [2, 3, 4, 5]  # NCHW, every axis a different size so a wrong perm cannot hide
Y = [2, 4, 5, 3]  # the same tensor as NHWC
TO_NHWC, TO_NCHW = (0, 2, 3, 1), (0, 3, 1, 2)


def sandwich(op_nodes, opset: int = 17, inits=(), out_dtype=TensorProto.FLOAT, extra_inputs=()):
    """x ─T(0,2,3,1)─ [op_nodes: y → z] ─T(0,3,1,2)─ out: every rewrite should leave no Transpose."""
    nodes = [transpose("x", "y", TO_NHWC), *op_nodes, transpose("z", "out", TO_NCHW)]
    return make_model(nodes, [value("x", X), *extra_inputs], [value("out", X, out_dtype)], inits, opset)


def pushed(m, exact: bool = True, transposes: int = 0):
    """push-transposes leaves ``transposes`` Transposes, computes the same outputs (bit for bit when
    ``exact``) and is a no-op on its own output."""
    out, result = apply(m, PushTransposes())
    assert result.changed > 0, result.skipped
    assert op_counts(out)["Transpose"] == transposes, op_counts(out)
    assert_same(m, out, **({} if exact else {"rtol": 1e-5, "atol": 1e-6}))
    again, second = apply(out, PushTransposes())
    assert second.changed == 0 and op_counts(again) == op_counts(out)
    return out, result


def not_pushed(m, reason: str):
    """push-transposes changes nothing and says ``reason`` (a regex) for at least one candidate."""
    out, result = apply(m, PushTransposes())
    assert result.changed == 0 and op_counts(out) == op_counts(m)
    assert any(re.search(reason, s.reason) for s in result.skipped), result.skipped
    return result


UNARY = ["Relu", "Elu", "Selu", "Sigmoid", "HardSigmoid", "Tanh", "Erf", "Softplus", "Sqrt", "Reciprocal", "Neg",
         "Abs", "Exp", "Log", "HardSwish", "Identity", "Floor", "Softsign"]
