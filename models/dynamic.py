"""ONNX graphs with dynamic axes that cannot run at every size, as other converters write them.

- ``detector``: an FPN-style block. ``x[N,3,H,W]`` goes through a padded Conv and a BatchNorm, five
  stride-2 MaxPools bring it to ``H/32``, a nearest Resize ×32 brings it back and is added to the
  full-size features: the Add broadcasts only when H and W are multiples of 32 (at 8 it fails).
- ``audio``: ``x[N,1,T]`` with a reflect Pad of 32 samples on each side (onnxruntime needs T > 32), a
  strided Conv1d and a BatchNorm: at 8 or 16 samples it cannot run.

Both leave work for the fix preset (a Pad to fold, a BatchNorm to fold) so the numeric gate has rewrites to
judge at sizes the graph really runs.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnxmend.models.weights import rng_for

OPSET = 17


def build_detector(seed: int = 0) -> onnx.ModelProto:
    rng = rng_for("detector-dynamic-onnx", seed)
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["padded"], mode="constant"),
        helper.make_node("Conv", ["padded", "w1", "b1"], ["c1"], kernel_shape=[3, 3]),
        helper.make_node("BatchNormalization", ["c1", "g", "beta", "mean", "var"], ["bn"], epsilon=1e-3),
        helper.make_node("Relu", ["bn"], ["f"]),
    ]
    current = "f"
    for i in range(5):
        nodes.append(helper.make_node("MaxPool", [current], [f"p{i}"], kernel_shape=[2, 2], strides=[2, 2]))
        current = f"p{i}"
    nodes += [
        helper.make_node("Resize", [current, "", "scales"], ["up"], mode="nearest"),
        helper.make_node("Add", ["f", "up"], ["merged"]),
        helper.make_node("Conv", ["merged", "w2", "b2"], ["y"], kernel_shape=[1, 1]),
    ]
    inits = {
        "pads": np.array([0, 0, 1, 1, 0, 0, 1, 1], np.int64),
        "w1": _he(rng, (8, 3, 3, 3)), "b1": rng.normal(0, 0.05, 8),
        "g": rng.uniform(0.5, 1.5, 8), "beta": rng.normal(0, 0.1, 8), "mean": rng.normal(0, 0.2, 8),
        "var": rng.uniform(0.5, 1.5, 8), "scales": np.array([1, 1, 32, 32], np.float32),
        "w2": _he(rng, (4, 8, 1, 1)), "b2": rng.normal(0, 0.05, 4),
    }
    return _model(nodes, "x", ["N", 3, "H", "W"], "y", inits)


def build_audio(seed: int = 0) -> onnx.ModelProto:
    rng = rng_for("audio-reflect-onnx", seed)
    nodes = [
        helper.make_node("Pad", ["x", "pads"], ["padded"], mode="reflect"),
        helper.make_node("Conv", ["padded", "w", "b"], ["c"], kernel_shape=[64], strides=[16]),
        helper.make_node("BatchNormalization", ["c", "g", "beta", "mean", "var"], ["bn"], epsilon=1e-5),
        helper.make_node("Relu", ["bn"], ["y"]),
    ]
    inits = {
        "pads": np.array([0, 0, 32, 0, 0, 32], np.int64), "w": _he(rng, (8, 1, 64)), "b": rng.normal(0, 0.05, 8),
        "g": rng.uniform(0.5, 1.5, 8), "beta": rng.normal(0, 0.1, 8), "mean": rng.normal(0, 0.2, 8),
        "var": rng.uniform(0.5, 1.5, 8),
    }
    return _model(nodes, "x", ["N", 1, "T"], "y", inits)


def _he(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    fan_in = int(np.prod(shape[1:]))
    return rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)


def _model(nodes, x: str, x_shape, y: str, inits: dict[str, np.ndarray]) -> onnx.ModelProto:
    """A checked model with inferred output type (its spatial/time dims stay symbolic)."""
    tensors = [numpy_helper.from_array(v if v.dtype == np.int64 else v.astype(np.float32), k) for k, v in inits.items()]
    graph = helper.make_graph(
        nodes, "dynamic", [helper.make_tensor_value_info(x, TensorProto.FLOAT, x_shape)],
        [helper.make_tensor_value_info(y, TensorProto.FLOAT, [x_shape[0], None] + [None] * (len(x_shape) - 2))], tensors,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="onnxmend-zoo")
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model
