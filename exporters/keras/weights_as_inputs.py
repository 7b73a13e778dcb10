"""Heavy Keras models are traced with their weights as inputs, so tf2onnx never holds a copy of them.

tf2onnx freezes a function's variables into constants and then copies every constant through TensorFlow's
GraphDef, its own graph, its constant folding and its optimizers: keras:VGG16 (0.55 GB of weights) peaked at
4.3 GB in the conversion alone and took 46 s. Past :data:`HEAVY_KERAS_BYTES` the function handed to tf2onnx
instead takes the variables' values as arguments (Keras' ``StatelessScope`` feeds them to the layers), so
the traced graph holds none of them; afterwards each weight input becomes an initializer, written from its
Keras variable to a file the model reads it from (:mod:`onnxmend.core.lazy`), and the data movement tf2onnx
left on the weights is folded. VGG16's conversion then takes under a second and adds nothing to the weights
the Keras model holds::

    before binding                                   after binding and folding
    input ─ Transpose ─ Conv ─ ...                   input ─ Transpose ─ Conv ─ ...
    weight_0 (graph input) ─ Transpose ─┘            weight_0' (initializer, OIHW) ┘
    weight_1 (graph input) ─ Reshape ─ Squeeze ─┘    weight_1' (initializer) ───────┘

Only variables of :data:`FED_BYTES` or more are fed: the small ones (norm affines, biases, BatchNorm
statistics) stay frozen constants, because tf2onnx's transpose optimizer moves layout Transposes through
their ops only when it can rewrite them (with them fed, ConvNeXtTiny's LayerNorms stopped fusing: 513 nodes
after fix instead of 167). Folded here are only the exact data-movement ops (:data:`FOLDED_OPS`) whose inputs
are all constant and that a weight reaches; arithmetic on weights is left to the fix passes.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, Callable, Sequence

import numpy as np
import onnx
import onnx.numpy_helper
from onnx.reference import ReferenceEvaluator

from onnxmend.core.deps import require
from onnxmend.core.errors import OnnxmendError
from onnxmend.core.lazy import materialised
from onnxmend.core.weight_files import append_lazy
from onnxmend.core.wellformed import graphs

log = logging.getLogger(__name__)

HEAVY_KERAS_BYTES = 256_000_000
FED_BYTES = 1 << 20  # variables this big or bigger are fed; smaller ones (norm affines, biases) stay frozen
WEIGHT_PREFIX = "onnxmend_weight_"
FOLDED_OPS = frozenset({
    "Transpose", "Reshape", "Squeeze", "Unsqueeze", "Identity", "Flatten", "Cast", "Concat", "Split", "Slice",
    "Gather",
})


@dataclass
class WeightFeed:
    """A traced function that takes the model's inputs followed by every weight, and the weights it takes."""

    function: Any
    signature: list[Any]
    variables: dict[str, Any]  # ONNX input name -> the Keras variable whose value it takes


def weight_feeding_function(model: Any, signature: Sequence[Any], call: Callable[[Sequence[Any]], Any]) -> WeightFeed:
    """``call(args)`` traced as ``f(*inputs, *weights)``: the layers read each weight from its argument."""
    tf = require("tensorflow")
    keras = require("keras")
    variables = [v for v in list(model.trainable_variables) + list(model.non_trainable_variables)
                 if _bytes(v) >= FED_BYTES]
    names = [f"{WEIGHT_PREFIX}{i}" for i in range(len(variables))]
    weight_specs = [tf.TensorSpec(tuple(int(d) for d in v.shape), v.dtype, name=n) for v, n in zip(variables, names)]
    full = list(signature) + weight_specs
    count = len(signature)

    @tf.function(input_signature=full, autograph=False)
    def fed(*args):
        with keras.StatelessScope(state_mapping=list(zip(variables, args[count:]))):
            return call(args[:count])

    return WeightFeed(fed, full, dict(zip(names, variables)))


def _bytes(variable: Any) -> int:
    return int(np.prod(variable.shape)) * np.dtype(variable.dtype).itemsize


def bind_weights(model: onnx.ModelProto, variables: dict[str, Any], store: Path | None = None) -> tuple[int, int]:
    """Turn the weight inputs of ``model`` into initializers holding the variables' values; returns how many
    were bound and how many ops were folded after binding. A weight the graph does not read is dropped.

    With ``store`` (a file path) the values are written there, one variable at a time, and the initializers
    read them from it when needed (:mod:`onnxmend.core.lazy`): the model never holds them in memory."""
    graph = model.graph
    fed = [vi for vi in graph.input if vi.name.startswith(WEIGHT_PREFIX)]
    unknown = [vi.name for vi in fed if vi.name not in variables]
    if unknown:
        raise OnnxmendError(f"tf2onnx named weight inputs onnxmend did not feed: {', '.join(unknown[:3])}.")
    read = {name for node in graph.node for name in node.input} | {o.name for o in graph.output}
    with contextlib.ExitStack() as stack:
        data = stack.enter_context(open(store, "ab")) if store is not None else None
        for vi in fed:
            graph.input.remove(vi)
            if vi.name in read:
                graph.initializer.append(_bound(variables[vi.name], vi.name, data, store))
    bound = {vi.name for vi in fed if vi.name in read}
    return len(bound), fold_weight_chains(model, bound)


def _bound(variable: Any, name: str, data: BinaryIO | None, store: Path | None) -> onnx.TensorProto:
    value = np.ascontiguousarray(variable.numpy())
    if data is None or store is None or sys.byteorder != "little":  # the file holds little-endian bytes
        return onnx.numpy_helper.from_array(value, name)
    like = onnx.TensorProto(name=name, data_type=onnx.helper.np_dtype_to_tensor_dtype(value.dtype),
                            dims=list(value.shape))
    return append_lazy(data, store, like, memoryview(value).cast("B"))


def fold_weight_chains(model: onnx.ModelProto, weights: set[str]) -> int:
    """Fold, in graph order, every :data:`FOLDED_OPS` node whose inputs are all initializers and that one of
    ``weights`` reaches; the weights and folded inputs nothing reads any more are removed (other initializers
    stay as they were). Returns the number folded."""
    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 17)
    values = {t.name: t for t in graph.initializer}
    reached, consumed = set(weights), set()
    kept, folded = [], 0
    for node in graph.node:
        inputs = [n for n in node.input if n]
        if (node.op_type in FOLDED_OPS and node.domain in ("", "ai.onnx") and inputs
                and all(n in values for n in inputs) and any(n in reached for n in inputs)):
            feeds = {n: onnx.numpy_helper.to_array(materialised(values[n])) for n in inputs}
            results = ReferenceEvaluator(node, opsets={"": opset}).run(None, feeds)
            for name, result in zip(node.output, results):
                values[name] = onnx.numpy_helper.from_array(np.asarray(result), name)
                reached.add(name)
            consumed.update(inputs)
            folded += 1
            continue
        kept.append(node)
    read = {n for node in kept for n in node.input} | {o.name for o in graph.output}
    # and what subgraphs read (outer-scope values among them): only kept nodes have any (FOLDED_OPS have none)
    read |= {n for body in list(graphs(graph))[1:] for node in body.node for n in node.input}
    del graph.node[:]
    graph.node.extend(kept)
    initializers = [t for name, t in values.items() if name in read or name not in reached | consumed]
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    if folded:
        log.info("folded %d data-movement op(s) on the weights after binding them", folded)
    return folded
