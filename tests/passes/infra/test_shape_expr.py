"""shape_expression: run-time shape chains read as products of named dims, never guessed."""

from __future__ import annotations

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.passes.infra.shape_expr import dims_of, product, shape_expression


def chain(shape, *ops):
    """Shape(x) followed by ``ops``, each (op, constant second input or None, attrs)."""
    x = gs.Variable("x", np.float32, shape)
    graph = gs.Graph(inputs=[x])
    (current,) = graph.layer(op="Shape", inputs=[x], outputs=["s"])
    for i, (op, arg, attrs) in enumerate(ops):
        inputs = [current] + ([gs.Constant(f"c{i}", np.asarray(arg, np.int64))] if arg is not None else [])
        (current,) = graph.layer(op=op, inputs=inputs, outputs=[f"t{i}"], attrs=attrs)
    return current


def test_a_flattened_dynamic_batch_is_the_product_of_its_named_dims():
    flat = chain(["N", 56, 56, 96], ("Gather", [0, 1, 2], {"axis": 0}), ("ReduceProd", None, {"axes": [0], "keepdims": 0}),
                 ("Concat", [96], {"axis": 0}))
    assert shape_expression(flat) == [(3136, ("N",)), (96, ())]
    assert shape_expression(flat) == [product(dims_of(["N", 56, 56])), (96, ())]


def test_unnamed_dims_and_unknown_ops_give_nothing():
    assert shape_expression(chain([None, 3], ("Gather", [0], {"axis": 0}))) is None
    assert shape_expression(chain(["N", 3], ("Add", [1, 1], {}))) is None
    assert shape_expression(chain(["N", 3], ("Gather", [5], {"axis": 0}))) is None
