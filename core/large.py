"""Models too big to serialise: checked, shape-inferred and saved without copying their weights.

protobuf cannot serialise a message past 2 GiB, and onnx's checker, shape inference and external-data
saver all serialise or rewrite the model they are given: a 2.2 GB model fails the first two outright, and
``onnx.save_model(..., save_as_external_data=True)`` moves the bytes out of the caller's model (with
protobuf's arena allocator, putting them back costs a second copy). Even ``ModelProto.ByteSize()``
serialises the whole model to count it. So here:

- a model's size is *estimated* from its tensors' dims and dtypes (:func:`model_bytes`), never counted;
- past :data:`LARGE_MODEL_BYTES` the checker and shape inference run on a *skeleton*: the same model whose
  initializers of 1 MiB or more keep their name, dtype and dims but point at an empty external file
  (neither needs a big tensor's values; data propagation reads small integer tensors only), and what
  inference found is written back onto the model (:func:`infer_shapes_in_place`);
- past :data:`HEAVY_MODEL_BYTES` (:func:`is_heavy`) the checker and the graph worker's shape inference use
  the skeleton too: the weights would be serialised, copied into the worker and back only to be ignored
  (keras VGG16, 553 MB: the graph worker peaked at 2.8 GB inferring the shapes of the input graph);
- writing such models one tensor at a time is :mod:`onnxmend.core.weight_files`.
"""

from __future__ import annotations

import functools
import math
import os
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import numpy as np
import onnx

from onnxmend.core.lazy import is_lazy, tensor_head
from onnxmend.core.wellformed import graphs

LARGE_MODEL_BYTES = 1 << 30
HEAVY_MODEL_BYTES = 64 << 20
STRIPPED_BYTES = 1 << 20
ALIGNMENT = 4096  # tensors start on page boundaries in the data file, so onnxruntime can map them
_PLACEHOLDER = "onnxmend-stripped.bin"

Replace = Callable[[onnx.TensorProto], "onnx.TensorProto | None"]


def tensor_bytes(tensor: onnx.TensorProto) -> int:
    """The size of a tensor's values from its dims and dtype (strings: as stored)."""
    if tensor.data_type == onnx.TensorProto.STRING:
        return sum(len(s) for s in tensor.string_data)
    itemsize = dtype_itemsize(tensor.data_type)
    if itemsize is None:  # an undefined or unknown dtype: count what is stored
        return tensor.ByteSize()
    return math.prod(tensor.dims) * itemsize


@functools.lru_cache(maxsize=None)
def dtype_itemsize(data_type: int) -> int | None:
    try:
        return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(data_type)).itemsize
    except (KeyError, TypeError, ValueError):
        return None


def model_bytes(model: onnx.ModelProto, stop_at: int | None = None) -> int:
    """An estimate of ``model``'s size: its initializers and its Constant nodes' values (counting stops
    once past ``stop_at``, when given)."""
    size = 0
    for tensor in model.graph.initializer:
        size += tensor_bytes(tensor)
        if stop_at is not None and size >= stop_at:
            return size
    tensor_type = onnx.AttributeProto.TENSOR
    for node in model.graph.node:
        if node.op_type in _TENSOR_VALUED or node.domain not in ("", "ai.onnx"):  # only these have tensor attributes
            for attribute in node.attribute:
                if attribute.type == tensor_type:
                    size += tensor_bytes(attribute.t)
    return size


_TENSOR_VALUED = frozenset({"Constant", "ConstantOfShape"})  # the standard ops with a tensor attribute


def is_large(model: onnx.ModelProto) -> bool:
    return model_bytes(model, stop_at=LARGE_MODEL_BYTES) >= LARGE_MODEL_BYTES


def is_heavy(model: onnx.ModelProto) -> bool:
    """Weights enough that checking and inferring on the skeleton beats serialising them, or weights still in
    a data file (:func:`has_lazy`): such a model, whatever its size, must be checked on its skeleton and
    written or sent one tensor at a time, since its references mean nothing outside this process."""
    return model_bytes(model, stop_at=HEAVY_MODEL_BYTES) >= HEAVY_MODEL_BYTES or has_lazy(model)


def has_lazy(model: onnx.ModelProto) -> bool:
    """Whether an initializer of the graph, or of a subgraph (graphsurgeon moves an outer weight that only a
    branch reads into that branch), reads its bytes from a file (:mod:`onnxmend.core.lazy`)."""
    if any(is_lazy(t) for t in model.graph.initializer):
        return True
    return any(is_lazy(t) for node in model.graph.node if _may_hold_subgraphs(node) for t in node_initializers(node))


def _may_hold_subgraphs(node: onnx.NodeProto) -> bool:
    """If/Loop/Scan, or an op of another domain (reading every node's attributes costs 0.17 s at 100k nodes)."""
    return node.op_type in CONTROL_FLOW or node.domain not in ("", "ai.onnx")


CONTROL_FLOW = frozenset({"If", "Loop", "Scan"})


def with_initializers(model: onnx.ModelProto, replace: Replace) -> onnx.ModelProto:
    """A copy of ``model`` in which each initializer is ``replace(tensor)``, or a copy of it when None; the
    initializers of subgraphs (graphsurgeon exports an outer weight that only a branch reads there) too."""
    copy = onnx.ModelProto()
    copy_fields(model, copy, skip="graph")
    copy_fields(model.graph, copy.graph, skip="initializer")
    for tensor in model.graph.initializer:
        new = replace(tensor)
        copy.graph.initializer.add().CopyFrom(new if new is not None else tensor)
    for tensor in subgraph_initializers(copy.graph):
        new = replace(tensor)
        if new is not None:
            tensor.CopyFrom(new)
    return copy


def subgraph_initializers(graph: onnx.GraphProto) -> Iterator[onnx.TensorProto]:
    """The initializers of every subgraph below ``graph`` (If branches, Loop and Scan bodies), depth first."""
    for node in graph.node:
        yield from node_initializers(node)


def node_initializers(node: onnx.NodeProto) -> Iterator[onnx.TensorProto]:
    """The initializers of ``node``'s subgraphs and of theirs, depth first."""
    for attribute in node.attribute:
        for body in [attribute.g] if attribute.type == onnx.AttributeProto.GRAPH else attribute.graphs:
            for graph in graphs(body):
                yield from graph.initializer


def _copied(tensor: onnx.TensorProto) -> onnx.TensorProto:
    copy = onnx.TensorProto()
    copy.CopyFrom(tensor)
    return copy


def skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with its initializers of 1 MiB or more pointing at an empty external file."""
    def stub(tensor: onnx.TensorProto) -> onnx.TensorProto | None:
        if tensor.data_location != onnx.TensorProto.EXTERNAL and tensor_bytes(tensor) < STRIPPED_BYTES:
            return None
        return external_stub(tensor, _PLACEHOLDER)  # external ones too: the placeholder is the file that exists
    return with_initializers(model, stub)


def check_model(model: onnx.ModelProto, full_check: bool = False) -> None:
    """The ONNX checker, on the model itself or (when it is heavy) on its skeleton, saved with a placeholder
    data file (the checker wants the external file to exist; it does not read it)."""
    if not is_heavy(model):
        onnx.checker.check_model(model, full_check=full_check)
        return
    with tempfile.TemporaryDirectory(prefix="onnxmend-check-") as folder:
        Path(folder, _PLACEHOLDER).touch()
        path = os.path.join(folder, "skeleton.onnx")
        onnx.save_model(skeleton(model), path)
        onnx.checker.check_model(path, full_check=full_check)


def infer_shapes_in_place(model: onnx.ModelProto, strict: bool, data_prop: bool = True) -> onnx.ModelProto:
    """Shape inference on ``model``'s skeleton, its findings written onto ``model``."""
    inferred = onnx.shape_inference.infer_shapes(skeleton(model), check_type=strict, strict_mode=strict,
                                                 data_prop=data_prop)
    return adopt_inferred(model, inferred)


def adopt_inferred(model: onnx.ModelProto, inferred: onnx.ModelProto) -> onnx.ModelProto:
    """Write what inference found on ``model``'s skeleton (``inferred``) onto ``model``; returns ``model``."""
    graph, found = model.graph, inferred.graph
    del graph.value_info[:]
    graph.value_info.extend(found.value_info)
    for mine, theirs in zip(graph.output, found.output):
        mine.CopyFrom(theirs)
    for mine, theirs in zip(graph.node, found.node):
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in mine.attribute):
            # subgraph bodies carry their own value_info; their initializers are the model's, not the stubs
            weights = [_copied(t) for t in node_initializers(mine)]
            mine.CopyFrom(theirs)
            for stub, weight in zip(node_initializers(mine), weights):
                stub.CopyFrom(weight)
    return model


def external_stub(tensor: onnx.TensorProto, location: str, offset: int | None = None,
                   length: int | None = None) -> onnx.TensorProto:
    stub = tensor_head(tensor)
    stub.data_location = onnx.TensorProto.EXTERNAL
    entries = [("location", location)] + ([("offset", str(offset)), ("length", str(length))] if length is not None else [])
    for key, value in entries:
        entry = stub.external_data.add()
        entry.key, entry.value = key, value
    return stub


def copy_fields(source, target, skip: str) -> None:
    """Every set field of ``source`` onto ``target`` but ``skip``."""
    for field, value in source.ListFields():
        if field.name == skip:
            continue
        if getattr(field, "is_repeated", None) or getattr(field, "label", None) == field.LABEL_REPEATED:
            getattr(target, field.name).extend(value)
        elif field.type == field.TYPE_MESSAGE:
            getattr(target, field.name).CopyFrom(value)
        else:
            setattr(target, field.name, value)
