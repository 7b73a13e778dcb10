"""fold-batch-norm: Conv stacks, ConvTranspose with groups, Gemm/MatMul, the Mul+Add fallback, refusals."""

from __future__ import annotations

import re

import numpy as np
import onnx
import pytest
from onnx import TensorProto

from onnxmend.passes.folding.fold_batch_norm import FoldBatchNorm
from tests.builders import apply, assert_same, make_model, node, ops, rand, run, seeded_feeds

F32 = TensorProto.FLOAT


def bn_params(prefix: str, c: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        f"{prefix}_g": rng.uniform(0.5, 1.5, c).astype(np.float32), f"{prefix}_b": rng.normal(0, 0.1, c).astype(np.float32),
        f"{prefix}_m": rng.normal(0, 0.1, c).astype(np.float32), f"{prefix}_v": rng.uniform(0.5, 2.0, c).astype(np.float32),
    }


def bn(src: str, dst: str, prefix: str, eps: float = 1e-5, **attrs) -> onnx.NodeProto:
    return node("BatchNormalization", [src, f"{prefix}_g", f"{prefix}_b", f"{prefix}_m", f"{prefix}_v"], dst, epsilon=eps, **attrs)


def conv_bn_stack(depth: int = 24, c: int = 8) -> onnx.ModelProto:
    nodes, inits, src = [], {}, "x"
    for i in range(depth):
        w = np.random.default_rng(100 + i).normal(0, np.sqrt(2.0 / (9 * c)), (c, c, 3, 3)).astype(np.float32)
        inits[f"w{i}"] = w
        inits.update(bn_params(f"bn{i}", c, i))
        nodes += [node("Conv", [src, f"w{i}"], f"c{i}", pads=[1, 1, 1, 1]), bn(f"c{i}", f"b{i}", f"bn{i}", eps=1e-3),
                  node("Relu", [f"b{i}"], f"r{i}")]
        src = f"r{i}"
    return make_model(nodes, {"x": ((1, c, 12, 12), F32)}, [src], inits)


def rel_err(a: onnx.ModelProto, b: onnx.ModelProto) -> float:
    feeds = seeded_feeds(a)
    (ra,), (rb,) = run(a, feeds), run(b, feeds)
    return float(np.max(np.abs(ra - rb)) / np.max(np.abs(ra)))


def test_deep_conv_bn_stack_folds_completely() -> None:
    model = conv_bn_stack()
    out, result = apply(model, FoldBatchNorm())
    assert result.changed == 24
    assert ops(out).count("BatchNormalization") == 0 and ops(out).count("Conv") == 24 and len(out.graph.node) == 48
    assert rel_err(model, out) <= 1e-5
    assert apply(out, FoldBatchNorm())[1].changed == 0


@pytest.mark.parametrize("groups", [1, 2])
def test_conv_transpose_with_groups(groups: int) -> None:
    c_in, c_out = 4, 6
    inits = {"w": rand((c_in, c_out // groups, 3, 3), 5), "bias": rand((c_out,), 6), **bn_params("bn", c_out, 7)}
    nodes = [node("ConvTranspose", ["x", "w", "bias"], "t", group=groups, strides=[2, 2]), bn("t", "y", "bn")]
    model = make_model(nodes, {"x": ((1, c_in, 5, 5), F32)}, ["y"], inits)
    out, result = apply(model, FoldBatchNorm())
    assert result.changed == 1 and ops(out) == ["ConvTranspose"]
    assert_same(model, out, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_with_bias_and_beta(trans_b: int) -> None:
    w = rand((6, 5) if trans_b else (5, 6), 8)
    inits = {"w": w, "c": rand((6,), 9), **bn_params("bn", 6, 10)}
    nodes = [node("Gemm", ["x", "w", "c"], "g", transB=trans_b, alpha=0.5, beta=2.0), bn("g", "y", "bn")]
    model = make_model(nodes, {"x": ((3, 5), F32)}, ["y"], inits)
    out, _ = apply(model, FoldBatchNorm())
    assert ops(out) == ["Gemm"]
    assert_same(model, out, atol=1e-5, rtol=1e-5)


def test_matmul_gains_an_add() -> None:
    inits = {"w": rand((5, 6), 8), **bn_params("bn", 6, 10)}
    model = make_model([node("MatMul", ["x", "w"], "m"), bn("m", "y", "bn")], {"x": ((3, 5), F32)}, ["y"], inits)
    out, _ = apply(model, FoldBatchNorm())
    assert ops(out) == ["Add", "MatMul"]
    assert_same(model, out, atol=1e-5, rtol=1e-5)


def test_bn_without_foldable_producer_becomes_mul_add() -> None:
    inits = bn_params("bn", 4, 3)
    model = make_model([node("Relu", ["x"], "r"), bn("r", "y", "bn")], {"x": ((2, 4, 3, 3), F32)}, ["y"], inits)
    out, result = apply(model, FoldBatchNorm())
    assert ops(out) == ["Add", "Mul", "Relu"]
    assert any(list(i.dims) == [4, 1, 1] for i in out.graph.initializer)
    assert re.search(r"not folded \(its input comes from Relu", result.notes[0])
    assert_same(model, out, atol=1e-6, rtol=1e-6)


def test_shared_conv_output_is_not_folded() -> None:
    inits = {"w": rand((4, 4, 1, 1), 1), **bn_params("bn", 4, 3)}
    nodes = [node("Conv", ["x", "w"], "c"), bn("c", "b", "bn"), node("Add", ["b", "c"], "y")]
    model = make_model(nodes, {"x": ((1, 4, 3, 3), F32)}, ["y"], inits)
    out, result = apply(model, FoldBatchNorm())
    assert ops(out) == ["Add", "Add", "Conv", "Mul"]
    assert re.search(r"output has other consumers", result.notes[0])
    assert_same(model, out, atol=1e-5, rtol=1e-5)


def test_non_constant_weights_are_not_folded() -> None:
    inits = bn_params("bn", 4, 3)
    model = make_model([node("Conv", ["x", "w"], "c"), bn("c", "y", "bn")],
                       {"x": ((1, 4, 3, 3), F32), "w": ((4, 4, 1, 1), F32)}, ["y"], inits)
    out, result = apply(model, FoldBatchNorm())
    assert "BatchNormalization" not in ops(out)
    assert re.search(r"weights are not constants", result.notes[0])


def test_training_outputs_in_use_are_left_alone() -> None:
    inits = bn_params("bn", 4, 3)
    nodes = [node("BatchNormalization", ["x", "bn_g", "bn_b", "bn_m", "bn_v"], ["y", "rm", "rv"], training_mode=1)]
    model = make_model(nodes, {"x": ((2, 4, 3, 3), F32)}, ["y", "rm"], inits, opset=15)
    out, result = apply(model, FoldBatchNorm())
    assert result.changed == 0 and ops(out) == ["BatchNormalization"]
    assert re.search(r"training_mode=1", result.skipped[0].reason)
