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
- :func:`write_external` writes a model with external data by streaming each tensor's bytes to the data
  file and saving a skeleton that points into it; the model itself is not touched;
- :func:`write_streamed` writes a heavy model inline, one initializer at a time: ``onnx.save_model``
  serialises the whole model first (keras VGG16: 1.5 GB more at the moment a 0.55 GB model was saved).
"""

from __future__ import annotations

import functools
import math
import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

import numpy as np
import onnx
from onnx import numpy_helper

from onnxmend.core.lazy import LAZY_MIN_BYTES, copy_into, has_lazy, is_lazy, make_lazy

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
    itemsize = _itemsize(tensor.data_type)
    if itemsize is None:  # an undefined or unknown dtype: count what is stored
        return tensor.ByteSize()
    return math.prod(tensor.dims) * itemsize


@functools.lru_cache(maxsize=None)
def _itemsize(data_type: int) -> int | None:
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
        for attribute in node.attribute:
            if attribute.type == tensor_type:
                size += tensor_bytes(attribute.t)
    return size


def is_large(model: onnx.ModelProto) -> bool:
    return model_bytes(model, stop_at=LARGE_MODEL_BYTES) >= LARGE_MODEL_BYTES


def is_heavy(model: onnx.ModelProto) -> bool:
    """Weights enough that checking and inferring on the skeleton beats serialising them."""
    return model_bytes(model, stop_at=HEAVY_MODEL_BYTES) >= HEAVY_MODEL_BYTES


def with_initializers(model: onnx.ModelProto, replace: Replace) -> onnx.ModelProto:
    """A copy of ``model`` in which each initializer is ``replace(tensor)``, or a copy of it when None."""
    copy = onnx.ModelProto()
    _copy_fields(model, copy, skip="graph")
    _copy_fields(model.graph, copy.graph, skip="initializer")
    for tensor in model.graph.initializer:
        new = replace(tensor)
        copy.graph.initializer.add().CopyFrom(new if new is not None else tensor)
    return copy


def skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """``model`` with its initializers of 1 MiB or more pointing at an empty external file."""
    def stub(tensor: onnx.TensorProto) -> onnx.TensorProto | None:
        if tensor.data_location != onnx.TensorProto.EXTERNAL and tensor_bytes(tensor) < STRIPPED_BYTES:
            return None
        return _external_stub(tensor, _PLACEHOLDER)  # external ones too: the placeholder is the file that exists
    return with_initializers(model, stub)


def check_model(model: onnx.ModelProto, full_check: bool = False) -> None:
    """The ONNX checker, on the model itself or (when it is heavy, or reads weights from a data file) on its
    skeleton, saved with a placeholder data file (the checker wants the external file to exist; it does not
    read it)."""
    if not is_heavy(model) and not has_lazy(model):
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
            mine.CopyFrom(theirs)  # subgraph bodies carry their own value_info
    return model


def write_external(model: onnx.ModelProto, path: Path, data_name: str, threshold: int = 1024) -> None:
    """Save ``model`` at ``path`` with every initializer of ``threshold`` bytes or more in ``data_name``
    beside it (one tensor at a time, page-aligned); ``model`` is left as it was."""
    with open(path.parent / data_name, "wb") as data:
        def spill(tensor: onnx.TensorProto) -> onnx.TensorProto | None:
            if is_lazy(tensor):  # still in the input's data file: copied across, a chunk at a time
                offset = -(-data.tell() // ALIGNMENT) * ALIGNMENT
                data.seek(offset)
                return _external_stub(tensor, data_name, offset, copy_into(tensor, data))
            if (tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.data_type == onnx.TensorProto.STRING
                    or tensor_bytes(tensor) < threshold):
                return None
            raw = tensor.raw_data if tensor.HasField("raw_data") else numpy_helper.tobytes_little_endian(
                numpy_helper.to_array(tensor))
            offset = -(-data.tell() // ALIGNMENT) * ALIGNMENT
            data.seek(offset)
            data.write(raw)
            return _external_stub(tensor, data_name, offset, len(raw))
        bones = with_initializers(model, spill)
    onnx.save_model(bones, str(path))


def spill(model: onnx.ModelProto, path: Path, min_bytes: int = LAZY_MIN_BYTES) -> onnx.ModelProto:
    """A copy of ``model`` whose initializers of ``min_bytes`` or more are written to ``path`` (one at a time,
    page-aligned) and read from there when needed (:mod:`onnxmend.core.lazy`); ``model`` is not changed.
    ``path`` must outlive the copy and every model made from it."""
    with open(path, "ab") as data:
        def out(tensor: onnx.TensorProto) -> onnx.TensorProto | None:
            if (tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.data_type == onnx.TensorProto.STRING
                    or tensor_bytes(tensor) < min_bytes):
                return None
            raw = tensor.raw_data if tensor.HasField("raw_data") else numpy_helper.tobytes_little_endian(
                numpy_helper.to_array(tensor))
            return append_lazy(data, path, tensor, raw)
        return with_initializers(model, out)


def append_lazy(data: BinaryIO, path: Path, like: onnx.TensorProto, payload: bytes | memoryview) -> onnx.TensorProto:
    """Append ``payload`` (the values of a tensor named, typed and shaped as ``like``) to the open data file
    ``data`` at ``path``, page-aligned; returns a tensor that reads them from there lazily."""
    end = data.seek(0, os.SEEK_END)
    offset = -(-end // ALIGNMENT) * ALIGNMENT
    data.write(b"\0" * (offset - end))  # padding written, not sought: the file is open for appending
    length = data.write(payload)
    data.flush()
    stub = _external_stub(like, path.name, offset, length)
    make_lazy(stub, path.parent, tensor_bytes(stub))
    return stub


def write_streamed(model: onnx.ModelProto, stream: BinaryIO) -> None:
    """Write ``model``'s protobuf encoding to ``stream`` holding one initializer's encoding at a time.

    The model without its graph, then the graph field (ModelProto field 7): the graph without its
    initializers, then each initializer as a GraphProto field 5 (a weight still in its input's data file:
    its other fields, then its bytes copied from the file as ``raw_data``, a chunk at a time). Protobuf
    parsers accept fields in any order, so this parses to the same model (re-serialised, the same bytes).
    """
    shell, graph = onnx.ModelProto(), onnx.GraphProto()
    _copy_fields(model, shell, skip="graph")
    _copy_fields(model.graph, graph, skip="initializer")
    graph_head = graph.SerializeToString()
    sizes = [_encoded_size(tensor) for tensor in model.graph.initializer]
    graph_size = len(graph_head) + sum(1 + len(_varint(n)) + n for n in sizes)
    stream.write(shell.SerializeToString())
    stream.write(bytes([_GRAPH_TAG]) + _varint(graph_size))
    stream.write(graph_head)
    for tensor, size in zip(model.graph.initializer, sizes):
        stream.write(bytes([_INITIALIZER_TAG]) + _varint(size))
        if is_lazy(tensor):
            length = tensor_bytes(tensor)
            stream.write(_lazy_head(tensor).SerializeToString() + bytes([_RAW_DATA_TAG]) + _varint(length))
            if copy_into(tensor, stream) != length:
                raise ValueError(f"tensor {tensor.name!r}'s data file holds fewer bytes than its dims say")
            continue
        data = tensor.SerializeToString()
        if len(data) != size:
            raise ValueError(f"tensor {tensor.name!r} encodes to {len(data)} bytes, not the {size} counted")
        stream.write(data)


def _lazy_head(tensor: onnx.TensorProto) -> onnx.TensorProto:
    """What a file-backed tensor is written with besides its bytes: name, dtype, doc string, dims."""
    head = onnx.TensorProto()
    head.name, head.data_type = tensor.name, tensor.data_type
    if tensor.HasField("doc_string"):
        head.doc_string = tensor.doc_string
    head.dims.extend(tensor.dims)
    return head


def _encoded_size(tensor: onnx.TensorProto) -> int:
    """The size of ``tensor``'s encoding, without serialising its ``raw_data`` (``ByteSize`` would): the
    rest of the tensor plus the raw_data field, whose length is what the dims and dtype say."""
    lazy = is_lazy(tensor)
    if not lazy and (not tensor.HasField("raw_data") or _itemsize(tensor.data_type) is None):
        return tensor.ByteSize()
    if lazy:
        rest = _lazy_head(tensor)
    else:
        rest = onnx.TensorProto()
        _copy_fields(tensor, rest, skip="raw_data")
    length = tensor_bytes(tensor)
    return rest.ByteSize() + 1 + len(_varint(length)) + length


_GRAPH_TAG = 7 << 3 | 2  # ModelProto.graph, length-delimited
_RAW_DATA_TAG = 9 << 3 | 2  # TensorProto.raw_data
_INITIALIZER_TAG = 5 << 3 | 2  # GraphProto.initializer, length-delimited


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _external_stub(tensor: onnx.TensorProto, location: str, offset: int | None = None,
                   length: int | None = None) -> onnx.TensorProto:
    stub = onnx.TensorProto()
    stub.name, stub.data_type = tensor.name, tensor.data_type
    if tensor.HasField("doc_string"):  # proto2: an empty one set would be written
        stub.doc_string = tensor.doc_string
    stub.dims.extend(tensor.dims)
    stub.data_location = onnx.TensorProto.EXTERNAL
    entries = [("location", location)] + ([("offset", str(offset)), ("length", str(length))] if length is not None else [])
    for key, value in entries:
        entry = stub.external_data.add()
        entry.key, entry.value = key, value
    return stub


def _copy_fields(source, target, skip: str) -> None:
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
