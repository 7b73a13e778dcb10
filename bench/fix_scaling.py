"""How the fix pipeline's run time grows with graph size (DESIGN.md: linear; a 100k-node graph in seconds).

The graph is a chain of tf2onnx-style blocks, 14 nodes each: an NHWC tensor wrapped in a Transpose pair
around a 1x1 Conv, a decomposed LayerNorm over the last axis, Relu and a residual Add; every pass of the
fix preset has work on it (push-transposes, fuse-layer-norm, cleanup). Tensors are tiny, so the time is
the tool's own, not onnxruntime's.

    .venv/bin/python bench/fix_scaling.py [--blocks 100 1000 7000] [--verify]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnxmend.passes.infra.base import PassContext
from onnxmend.passes.infra.catalogue import resolve
from onnxmend.passes.infra.manager import run_passes
from onnxmend.runtime.gate import NumericGate

CHANNELS, SIZE = 8, 4


def block(i: int, x: str, rng: np.random.Generator) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]:
    p = f"b{i}_"
    inits = [
        numpy_helper.from_array(rng.standard_normal((CHANNELS, CHANNELS, 1, 1)).astype(np.float32) * 0.3, p + "w"),
        numpy_helper.from_array(rng.standard_normal(CHANNELS).astype(np.float32), p + "gamma"),
        numpy_helper.from_array(rng.standard_normal(CHANNELS).astype(np.float32), p + "beta"),
        numpy_helper.from_array(np.asarray(1e-3, np.float32), p + "eps"),
    ]
    n = helper.make_node
    nodes = [
        n("Transpose", [x], [p + "nchw"], perm=[0, 3, 1, 2]), n("Conv", [p + "nchw", p + "w"], [p + "conv"]),
        n("Transpose", [p + "conv"], [p + "nhwc"], perm=[0, 2, 3, 1]),
        n("ReduceMean", [p + "nhwc"], [p + "mean"], axes=[-1]), n("Sub", [p + "nhwc", p + "mean"], [p + "d"]),
        n("Mul", [p + "d", p + "d"], [p + "sq"]), n("ReduceMean", [p + "sq"], [p + "var"], axes=[-1]),
        n("Add", [p + "var", p + "eps"], [p + "ve"]), n("Sqrt", [p + "ve"], [p + "std"]),
        n("Div", [p + "d", p + "std"], [p + "norm"]), n("Mul", [p + "norm", p + "gamma"], [p + "scaled"]),
        n("Add", [p + "scaled", p + "beta"], [p + "shifted"]), n("Relu", [p + "shifted"], [p + "relu"]),
        n("Add", [p + "relu", x], [p + "out"]),
    ]
    return nodes, inits, p + "out"


def chain(blocks: int) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    x = "x"
    for i in range(blocks):
        more, params, x = block(i, x, rng)
        nodes += more
        inits += params
    shape = [1, SIZE, SIZE, CHANNELS]
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--verify", action="store_true", help="Also gate every pass numerically (onnxruntime).")
    args = parser.parse_args()
    for blocks in args.blocks:
        model = chain(blocks)
        start = time.perf_counter()
        gate = NumericGate(model) if args.verify else None
        fixed, report = run_passes(model, resolve("fix"), PassContext(opset=17, layout="nchw"), gate=gate)
        seconds = time.perf_counter() - start
        per_pass: dict[str, float] = {}
        for record in report.records:
            per_pass[record.name] = per_pass.get(record.name, 0.0) + record.seconds
        slowest = ", ".join(f"{k} {v:.1f} s" for k, v in sorted(per_pass.items(), key=lambda kv: -kv[1])[:3])
        print(f"{len(model.graph.node):>7} nodes → {len(fixed.graph.node):>6}: {seconds:7.1f} s "
              f"({seconds / len(model.graph.node) * 1e3:.2f} ms/node, {report.rounds} rounds; slowest: {slowest})",
              flush=True)


if __name__ == "__main__":
    main()
