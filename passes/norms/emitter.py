"""Emitting primitive ops for a normalization: the spelling decompose-norms and respell-layer-norm share.

``normalize`` writes ``(x − mean) / sqrt(mean((x − mean)²) + eps)``; ReduceMean takes ``axes`` as an
attribute below opset 18 and as an input from 18 on. Nodes are named after the node they replace.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx_graphsurgeon as gs

from onnxmend.passes.infra.match import gs_const
from onnxmend.passes.infra.naming import Namer


@dataclass
class Emitter:
    """Appends primitive nodes for one decomposition, naming them after the node they replace."""

    graph: gs.Graph
    namer: Namer
    stem: str
    opset: int

    def op(self, op_type: str, inputs: list[gs.Tensor], dtype=None, out: gs.Variable | None = None, **attrs) -> gs.Variable:
        dst = out if out is not None else gs.Variable(self.namer(f"{self.stem}.{op_type.lower()}"), dtype=dtype)
        self.graph.nodes.append(gs.Node(op_type, self.namer(f"{self.stem}.{op_type}"), attrs=attrs, inputs=inputs, outputs=[dst]))
        return dst

    def const(self, label: str, value: np.ndarray) -> gs.Constant:
        return gs_const(self.namer(f"{self.stem}.{label}"), value)

    def mean(self, x: gs.Tensor, axes: list[int], dtype) -> gs.Variable:
        if self.opset < 18:
            return self.op("ReduceMean", [x], dtype, axes=axes, keepdims=1)
        return self.op("ReduceMean", [x, self.const("axes", np.asarray(axes, np.int64))], dtype, keepdims=1)

    def normalize(self, x: gs.Tensor, axes: list[int], eps: float, dtype: np.dtype,
                  out: gs.Variable | None = None) -> gs.Variable:
        """(x − mean) / sqrt(mean((x − mean)²) + eps) over ``axes``, written to ``out`` if given."""
        d = self.op("Sub", [x, self.mean(x, axes, dtype)], dtype)
        var = self.mean(self.op("Mul", [d, d], dtype), axes, dtype)
        biased = self.op("Add", [var, self.const("epsilon", np.asarray(eps, dtype))], dtype)
        return self.op("Div", [d, self.op("Sqrt", [biased], dtype)], dtype, out=out)
