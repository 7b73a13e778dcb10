"""Writing heavy models one tensor at a time: with external data, inline, or to a weights file kept aside.

- :func:`write_external` saves a model with external data by streaming each tensor's bytes to the data file
  (a weight still in another data file is copied across in chunks) and saving a skeleton that points into it;
  the model itself is not touched;
- :func:`write_streamed` writes a heavy model inline, one initializer at a time: ``onnx.save_model``
  serialises the whole model first (keras VGG16: 1.5 GB more at the moment a 0.55 GB model was saved);
- :func:`spill` and :func:`append_lazy` put weights into a file that the model then reads them from
  (:mod:`onnxmend.core.lazy`), so that the models made from it share that one copy; such a file lives in a
  :func:`weights_folder` that goes with the object holding the model (:func:`remove_with`).
"""

from __future__ import annotations

import os
import shutil
import tempfile
import weakref
from pathlib import Path
from typing import BinaryIO

import onnx
from onnx import numpy_helper

from onnxmend.core.large import (
    ALIGNMENT,
    copy_fields,
    dtype_itemsize,
    external_stub,
    subgraph_initializers,
    tensor_bytes,
    with_initializers,
)
from onnxmend.core.lazy import LAZY_MIN_BYTES, copy_into, is_lazy, make_lazy, materialised, tensor_head


def write_external(model: onnx.ModelProto, path: Path, data_name: str, threshold: int = 1024) -> None:
    """Save ``model`` at ``path`` with every initializer of ``threshold`` bytes or more in ``data_name``
    beside it (one tensor at a time, page-aligned); ``model`` is left as it was."""
    with open(path.parent / data_name, "wb") as data:
        def place(tensor: onnx.TensorProto) -> onnx.TensorProto | None:
            if is_lazy(tensor):  # still in the input's data file: copied across, a chunk at a time
                offset = _pad(data)
                return external_stub(tensor, data_name, offset, copy_into(tensor, data))
            if _stays(tensor, threshold):
                return None
            offset = _pad(data)
            return external_stub(tensor, data_name, offset, data.write(_payload(tensor)))
        bones = with_initializers(model, place)
    onnx.save_model(bones, str(path))


def weights_folder() -> Path:
    """A new temporary folder for weights kept aside on disk."""
    return Path(tempfile.mkdtemp(prefix="onnxmend-weights-"))


def remove_with(owner: object, folder: Path) -> None:
    """Remove ``folder`` when ``owner`` is garbage collected, or at exit."""
    weakref.finalize(owner, shutil.rmtree, str(folder), True)


def spill(model: onnx.ModelProto, path: Path, min_bytes: int = LAZY_MIN_BYTES) -> onnx.ModelProto:
    """A copy of ``model`` whose initializers of ``min_bytes`` or more are written to ``path`` (one at a time,
    page-aligned) and read from there when needed (:mod:`onnxmend.core.lazy`); ``model`` is not changed.
    ``path`` must outlive the copy and every model made from it."""
    with open(path, "ab") as data:
        def place(tensor: onnx.TensorProto) -> onnx.TensorProto | None:
            if _stays(tensor, min_bytes):
                return None
            return append_lazy(data, path, tensor, _payload(tensor))
        return with_initializers(model, place)


def append_lazy(data: BinaryIO, path: Path, like: onnx.TensorProto, payload: bytes | memoryview) -> onnx.TensorProto:
    """Append ``payload`` (the values of a tensor named, typed and shaped as ``like``) to the open data file
    ``data`` at ``path``, page-aligned; returns a tensor that reads them from there lazily."""
    offset = _pad(data)
    length = data.write(payload)
    data.flush()
    stub = external_stub(like, path.name, offset, length)
    make_lazy(stub, path.parent, tensor_bytes(stub))
    return stub


def _stays(tensor: onnx.TensorProto, min_bytes: int) -> bool:
    """A tensor a writer leaves where it is: already external, strings, or smaller than ``min_bytes``."""
    return (tensor.data_location == onnx.TensorProto.EXTERNAL or tensor.data_type == onnx.TensorProto.STRING
            or tensor_bytes(tensor) < min_bytes)


def _payload(tensor: onnx.TensorProto) -> bytes:
    """A tensor's values as the bytes a data file holds (little-endian, C order)."""
    if tensor.HasField("raw_data"):
        return tensor.raw_data
    return numpy_helper.tobytes_little_endian(numpy_helper.to_array(tensor))


def _pad(data: BinaryIO) -> int:
    """Zeros to the next page boundary at the end of ``data`` (written, not sought, so that a file open for
    appending is padded too); returns that boundary, where the next tensor starts."""
    end = data.seek(0, os.SEEK_END)
    offset = -(-end // ALIGNMENT) * ALIGNMENT
    data.write(b"\0" * (offset - end))
    return offset


def write_streamed(model: onnx.ModelProto, stream: BinaryIO) -> None:
    """Write ``model``'s protobuf encoding to ``stream`` holding one initializer's encoding at a time.

    The model without its graph, then the graph field (ModelProto field 7): the graph without its
    initializers, then each initializer as a GraphProto field 5 (a weight still in its input's data file:
    its other fields, then its bytes copied from the file as ``raw_data``, a chunk at a time). Protobuf
    parsers accept fields in any order, so this parses to the same model (re-serialised, the same bytes).
    """
    shell, graph = onnx.ModelProto(), onnx.GraphProto()
    copy_fields(model, shell, skip="graph")
    copy_fields(model.graph, graph, skip="initializer")
    for tensor in subgraph_initializers(graph):  # a branch's own weights are written inline with it
        if is_lazy(tensor):
            tensor.CopyFrom(materialised(tensor))
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
            stream.write(tensor_head(tensor).SerializeToString() + bytes([_RAW_DATA_TAG]) + _varint(length))
            if copy_into(tensor, stream) != length:
                raise ValueError(f"tensor {tensor.name!r}'s data file holds fewer bytes than its dims say")
            continue
        data = tensor.SerializeToString()
        if len(data) != size:
            raise ValueError(f"tensor {tensor.name!r} encodes to {len(data)} bytes, not the {size} counted")
        stream.write(data)


def _encoded_size(tensor: onnx.TensorProto) -> int:
    """The size of ``tensor``'s encoding, without serialising its ``raw_data`` (``ByteSize`` would): the
    rest of the tensor plus the raw_data field, whose length is what the dims and dtype say."""
    lazy = is_lazy(tensor)
    if not lazy and (not tensor.HasField("raw_data") or dtype_itemsize(tensor.data_type) is None):
        return tensor.ByteSize()
    if lazy:
        rest = tensor_head(tensor)
    else:
        rest = onnx.TensorProto()
        copy_fields(tensor, rest, skip="raw_data")
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
