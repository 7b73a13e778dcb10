"""The graphs mutations start from: zoo models exported to ONNX (cached on disk, they take a while to
export) and hand-built graphs that carry the constructs the zoo lacks — Einsum, a Loop, an If, shape
arithmetic (Shape→Gather→Concat→Reshape, Expand, ConstantOfShape, Range, Tile), a decomposed LayerNorm, a
Transpose sandwich around a Conv, a SAME_UPPER Conv.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

log = logging.getLogger(__name__)

F, I64, B = TensorProto.FLOAT, TensorProto.INT64, TensorProto.BOOL
# The zoo models a run uses by default: all but the three large ones (bit flips there mostly hit weights,
# and every run would copy tens of MB). ``NAME@legacy`` exports with the TorchScript exporter, whose
# graphs keep shape-computing chains.
DEFAULT_ZOO = (
    "detector-dynamic-onnx", "audio-reflect-onnx", "tf-same-conv-keras", "tf-same-conv-torch",
    "tf-pad-dynamic-torch@legacy", "depthwise-keras", "bn-stack-keras", "bn-stack-torch", "layernorm-hwc-keras",
    "groupnorm1-torch", "layernorm-chw-torch", "layernorm-last-keras", "gap-keepdims-torch", "gap-keras",
    "vit-block-torch",
)
ONNX_ZOO = ("detector-dynamic-onnx", "audio-reflect-onnx")


@dataclass(frozen=True)
class Seed:
    name: str
    data: bytes

    @property
    def model(self) -> onnx.ModelProto:
        return onnx.load_from_string(self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


def _model(nodes, inputs, outputs, inits=(), opset: int = 17) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "seed", inputs, outputs, list(inits))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="fuzz-seed")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def _f32(name: str, array) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array, np.float32), name)


def _i64(name: str, array) -> onnx.TensorProto:
    return numpy_helper.from_array(np.asarray(array, np.int64), name)


def einsum() -> onnx.ModelProto:
    node = helper.make_node("Einsum", ["a", "b"], ["y"], equation="ij,jk->ik")
    return _model([node], [helper.make_tensor_value_info("a", F, [2, 3]), helper.make_tensor_value_info("b", F, [3, 4])],
                  [helper.make_tensor_value_info("y", F, [2, 4])])


def loop() -> onnx.ModelProto:
    """x + trip·1 by a Loop carrying one value, with one scan output."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Add", ["v_in", "one"], ["v_out"]),
         helper.make_node("Identity", ["v_out"], ["scan"])],
        "body",
        [helper.make_tensor_value_info("i", I64, []), helper.make_tensor_value_info("cond_in", B, []),
         helper.make_tensor_value_info("v_in", F, [1, 4])],
        [helper.make_tensor_value_info("cond_out", B, []), helper.make_tensor_value_info("v_out", F, [1, 4]),
         helper.make_tensor_value_info("scan", F, [1, 4])],
        [_f32("one", 1.0)],
    )
    node = helper.make_node("Loop", ["trip", "cond", "x"], ["y", "ys"], body=body)
    inits = [_i64("trip", 5), numpy_helper.from_array(np.asarray(True), "cond")]
    return _model([node], [helper.make_tensor_value_info("x", F, [1, 4])],
                  [helper.make_tensor_value_info("y", F, [1, 4]), helper.make_tensor_value_info("ys", F, [None, 1, 4])], inits)


def if_branches() -> onnx.ModelProto:
    """Relu(x) when sum(x) > 0, else Neg(x); both branches read x from the outer scope."""
    def branch(op: str, name: str) -> onnx.GraphProto:
        return helper.make_graph([helper.make_node(op, ["x"], [f"{name}_y"])], name, [],
                                 [helper.make_tensor_value_info(f"{name}_y", F, [1, 4])])

    nodes = [helper.make_node("ReduceSum", ["x"], ["s"], keepdims=0), helper.make_node("Greater", ["s", "zero"], ["c"]),
             helper.make_node("If", ["c"], ["y"], then_branch=branch("Relu", "then"), else_branch=branch("Neg", "else"))]
    return _model(nodes, [helper.make_tensor_value_info("x", F, [1, 4])], [helper.make_tensor_value_info("y", F, [1, 4])],
                  [_f32("zero", 0.0)])


def shape_arithmetic() -> onnx.ModelProto:
    """A dynamic-batch graph whose shapes are computed: Shape→Gather→Concat→Reshape, Expand,
    ConstantOfShape, Range, Tile — the initializers extreme-dim mutations aim at."""
    n = helper.make_node
    nodes = [
        n("Shape", ["x"], ["shp"]), n("Gather", ["shp", "zero"], ["batch"], axis=0),
        n("Concat", ["batch", "rest"], ["target"], axis=0), n("Reshape", ["x", "target"], ["flat"]),
        n("Expand", ["flat", "expand_to"], ["wide"]), n("ConstantOfShape", ["cos_shape"], ["zeros"]),
        n("Add", ["wide", "zeros"], ["a"]), n("Range", ["r_start", "r_limit", "r_delta"], ["r"]),
        n("Tile", ["r", "reps"], ["rt"]), n("Cast", ["rt"], ["rtf"], to=F), n("Add", ["a", "rtf"], ["y"]),
    ]
    inits = [_i64("zero", [0]), _i64("rest", [-1]), _i64("expand_to", [1, 24]), _i64("cos_shape", [1, 24]),
             _i64("r_start", 0), _i64("r_limit", 12), _i64("r_delta", 1), _i64("reps", [2])]
    return _model(nodes, [helper.make_tensor_value_info("x", F, ["N", 2, 3, 4])],
                  [helper.make_tensor_value_info("y", F, ["N", 24])], inits)


def layer_norm() -> onnx.ModelProto:
    """A decomposed LayerNorm over the last axis, followed by a BatchNormalization-free affine."""
    n = helper.make_node
    nodes = [n("ReduceMean", ["x"], ["mean"], axes=[-1]), n("Sub", ["x", "mean"], ["d"]), n("Pow", ["d", "two"], ["sq"]),
             n("ReduceMean", ["sq"], ["var"], axes=[-1]), n("Add", ["var", "eps"], ["ve"]), n("Sqrt", ["ve"], ["std"]),
             n("Div", ["d", "std"], ["nrm"]), n("Mul", ["nrm", "gamma"], ["g"]), n("Add", ["g", "beta"], ["y"])]
    rng = np.random.default_rng(0)
    inits = [_f32("two", 2.0), _f32("eps", 1e-5), _f32("gamma", rng.standard_normal(8)), _f32("beta", rng.standard_normal(8))]
    return _model(nodes, [helper.make_tensor_value_info("x", F, ["N", 5, 8])], [helper.make_tensor_value_info("y", F, ["N", 5, 8])], inits)


def transpose_conv() -> onnx.ModelProto:
    """NHWC in, Transpose → SAME_UPPER stride-2 Conv → BatchNorm → Transpose → Relu, NHWC out."""
    n = helper.make_node
    rng = np.random.default_rng(1)
    nodes = [n("Transpose", ["x"], ["xt"], perm=[0, 3, 1, 2]),
             n("Conv", ["xt", "w", "b"], ["c"], auto_pad="SAME_UPPER", strides=[2, 2], kernel_shape=[3, 3]),
             n("BatchNormalization", ["c", "g", "beta", "mean", "var"], ["bn"], epsilon=1e-3),
             n("Transpose", ["bn"], ["ct"], perm=[0, 2, 3, 1]), n("Relu", ["ct"], ["y"])]
    inits = [_f32("w", rng.standard_normal((4, 3, 3, 3)) * 0.3), _f32("b", rng.standard_normal(4) * 0.1),
             _f32("g", rng.uniform(0.5, 1.5, 4)), _f32("beta", rng.standard_normal(4) * 0.1),
             _f32("mean", rng.standard_normal(4) * 0.1), _f32("var", rng.uniform(0.5, 1.5, 4))]
    return _model(nodes, [helper.make_tensor_value_info("x", F, [1, 9, 9, 3])], [helper.make_tensor_value_info("y", F, [1, 5, 5, 4])], inits)


CRAFTED: dict[str, Callable[[], onnx.ModelProto]] = {
    "einsum": einsum, "loop": loop, "if": if_branches, "shape-arithmetic": shape_arithmetic,
    "layer-norm": layer_norm, "transpose-conv": transpose_conv,
}


def crafted_seeds() -> list[Seed]:
    return [Seed(f"crafted:{name}", build().SerializeToString()) for name, build in CRAFTED.items()]


def zoo_seeds(names: Sequence[str], cache: Path) -> list[Seed]:
    """Each zoo model exported to ONNX once (``cache/NAME.onnx``); a model that cannot be exported here (a
    framework missing) is left out with a log line."""
    cache.mkdir(parents=True, exist_ok=True)
    seeds = []
    for name in names:
        path = cache / f"{name.replace('@', '.')}.onnx"
        if not path.exists():
            try:
                _export(name, path)
            except Exception as exc:  # a missing framework, an exporter failure: fuzz without this seed
                log.warning("zoo:%s left out of the seeds: %s", name, exc)
                continue
        seeds.append(Seed(f"zoo:{name}", path.read_bytes()))
    return seeds


def _export(name: str, path: Path) -> None:
    from onnxmend.exporters import ExportOptions, export

    zoo_name, _, exporter = name.partition("@")
    options = ExportOptions(torch_exporter=exporter) if exporter else ExportOptions()  # type: ignore[arg-type]
    model = export(f"zoo:{zoo_name}", options).model
    tmp = path.with_suffix(".tmp")
    onnx.save(model, str(tmp))
    tmp.replace(path)
