"""Random chains of supported ops wrapped in random Transposes: push-transposes keeps the numbers and never
adds a Transpose, on every seed."""

from __future__ import annotations

import itertools

import numpy as np
import onnx
import pytest
from onnx import helper

from onnxmend.passes.layout.push_transposes import PushTransposes
from tests.builders import apply, assert_same, init, make_model, op_counts, value

SHAPE = (2, 3, 4, 5)
PERMS = list(itertools.permutations(range(4)))


class Chain:
    """Builds x → (op | Transpose)* → out, tracking the current shape."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng, self.nodes, self.inits = rng, [], []
        self.name, self.shape, self.count = "x", list(SHAPE), 0

    def fresh(self, stem: str) -> str:
        self.count += 1
        return f"{stem}{self.count}"

    def const(self, shape: list[int]) -> str:
        name = self.fresh("c")
        self.inits.append(init(name, self.rng.uniform(0.5, 1.5, shape).astype(np.float32)))
        return name

    def emit(self, op: str, inputs: list[str], shape: list[int], **attrs) -> None:
        out = self.fresh(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        self.name, self.shape = out, shape

    def transpose(self) -> None:
        perm = list(PERMS[self.rng.integers(len(PERMS))])
        self.emit("Transpose", [self.name], [self.shape[p] for p in perm], perm=perm)

    def step(self) -> None:
        kind = self.rng.integers(7)
        rank = len(self.shape)
        if kind == 0:
            self.emit(["Relu", "Sigmoid", "Tanh", "Neg", "Abs"][self.rng.integers(5)], [self.name], self.shape)
        elif kind == 1:
            k = int(self.rng.integers(0, rank + 1))  # a constant of every rank, numpy-aligned to the end
            cshape = [d if self.rng.random() < 0.6 else 1 for d in self.shape[rank - k:]]
            op = ["Add", "Mul", "Sub", "Max"][self.rng.integers(4)]
            inputs = [self.name, self.const(cshape)]
            self.emit(op, inputs if self.rng.random() < 0.5 else inputs[::-1], self.shape)
        elif kind == 2:
            axis = int(self.rng.integers(rank))
            self.emit("ReduceMax", [self.name], [1 if i == axis else d for i, d in enumerate(self.shape)], axes=[axis], keepdims=1)
        elif kind == 3:
            self.emit("Softmax", [self.name], self.shape, axis=int(self.rng.integers(rank)))
        elif kind == 4:
            axis = int(self.rng.integers(rank))
            other = [2 if i == axis else d for i, d in enumerate(self.shape)]
            self.emit("Concat", [self.name, self.const(other)], [d + 2 if i == axis else d for i, d in enumerate(self.shape)], axis=axis)
        elif kind == 5:
            axis = int(self.rng.integers(rank))
            size = self.shape[axis]
            starts, ends, axes = self.const_int([0]), self.const_int([max(1, size - 1)]), self.const_int([axis])
            self.emit("Slice", [self.name, starts, ends, axes], [max(1, size - 1) if i == axis else d for i, d in enumerate(self.shape)])
        else:
            pads = [int(v) for v in self.rng.integers(0, 2, size=2 * rank)]
            shape = [d + pads[i] + pads[i + rank] for i, d in enumerate(self.shape)]
            self.emit("Pad", [self.name, self.const_int(pads)], shape)

    def const_int(self, values: list[int]) -> str:
        name = self.fresh("i")
        self.inits.append(init(name, np.int64(values)))
        return name

    def build(self, length: int) -> onnx.ModelProto:
        for _ in range(length):
            if self.rng.random() < 0.5:
                self.transpose()
            self.step()
        if self.rng.random() < 0.5:
            self.transpose()
        return make_model(self.nodes, [value("x", SHAPE)], [value(self.name, self.shape)], self.inits)


@pytest.mark.parametrize("seed", range(50))
def test_random_chain(seed):
    rng = np.random.default_rng(seed)
    m = Chain(rng).build(int(rng.integers(3, 9)))
    out, result = apply(m, PushTransposes())
    assert op_counts(out)["Transpose"] <= op_counts(m)["Transpose"]
    assert_same(m, out, rtol=1e-5, atol=1e-6, seed=seed)
    again, second = apply(out, PushTransposes())
    assert second.changed == 0 and op_counts(again) == op_counts(out)
