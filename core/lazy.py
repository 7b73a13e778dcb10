"""Weights left in a data file: heavy models read without loading every tensor.

Two places keep a heavy model's big initializers (1 MiB and up) on disk: ``fix`` of a model with external
data leaves them in the input's data file, and a heavy export (``convert``) writes them once to a temporary
file that the raw export, the fixed graph and every round read from. Such a tensor's ``location`` becomes
``onnxmend-lazy:/absolute/path/of/the/data/file`` (offset and length kept), a spelling no ONNX reader
accepts, so a tensor that reached onnxruntime or a file without being read here fails loudly instead of
silently. Everything that needs values goes through this module:

- graphsurgeon constants of such tensors load through :class:`LazyFileValues` (``import_graph`` attaches it),
  so a pass that reads a weight reads that weight only;
- writers copy the bytes from the file into the output's (:func:`copy_into`) or inline, one tensor at a time;
- :func:`digest` hashes a tensor's bytes in chunks (dedupe-initializers);
- ``create_session`` saves such a model with external data and loads it from there.

Small external tensors and tensors outside the main graph's initializers are read in at load time.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import onnx
import onnx_graphsurgeon as gs
from onnx import numpy_helper

LAZY_PREFIX = "onnxmend-lazy:"
LAZY_MIN_BYTES = 1 << 20
_CHUNK = 16 << 20


class LazyFileValues(gs.ir.tensor.LazyValues):
    """graphsurgeon's lazy values for a tensor whose bytes are still in the input's data file."""

    def load(self) -> np.ndarray:
        return np.array(numpy_helper.to_array(materialised(self.tensor)))


def is_lazy(tensor: onnx.TensorProto) -> bool:
    return tensor.data_location == onnx.TensorProto.EXTERNAL and _entry(tensor, "location").startswith(LAZY_PREFIX)


def make_lazy(tensor: onnx.TensorProto, folder: Path, expected: int) -> None:
    """Point the external ``tensor`` (its location relative to ``folder``) at its data file by absolute path.
    ``expected``: the byte count its dims and dtype give; a data file too short for it is refused."""
    location = _entry(tensor, "location")
    path = (folder / location).resolve()
    offset, length = _int_entry(tensor, "offset", 0), _int_entry(tensor, "length", -1)
    size = path.stat().st_size
    if length < 0:
        length = size - offset
    if offset < 0 or length != expected or offset + length > size:
        raise ValueError(f"tensor {tensor.name!r} needs {expected} bytes at offset {offset} of {location}, "
                         f"which has {max(0, size - offset)} there")
    _set_entries(tensor, {"location": f"{LAZY_PREFIX}{path}", "offset": str(offset), "length": str(length)})


def source(tensor: onnx.TensorProto) -> tuple[str, int, int]:
    """Where a lazy tensor's bytes are: data file, offset, length."""
    return (_entry(tensor, "location")[len(LAZY_PREFIX):], _int_entry(tensor, "offset", 0),
            _int_entry(tensor, "length", 0))


def read_bytes(tensor: onnx.TensorProto) -> bytes:
    path, offset, length = source(tensor)
    with open(path, "rb") as data:
        data.seek(offset)
        raw = data.read(length)
    if len(raw) != length:
        raise OSError(f"{path} ended before tensor {tensor.name!r}'s {length} bytes")
    return raw


def chunks(tensor: onnx.TensorProto) -> Iterator[bytes]:
    """A lazy tensor's bytes, in chunks of at most 16 MiB."""
    path, offset, length = source(tensor)
    with open(path, "rb") as data:
        data.seek(offset)
        while length:
            chunk = data.read(min(_CHUNK, length))
            if not chunk:
                raise OSError(f"{path} ended before tensor {tensor.name!r}'s bytes did")
            length -= len(chunk)
            yield chunk


def copy_into(tensor: onnx.TensorProto, stream: BinaryIO) -> int:
    """Append a lazy tensor's bytes to ``stream``; returns how many were written."""
    written = 0
    for chunk in chunks(tensor):
        stream.write(chunk)
        written += len(chunk)
    return written


def digest(tensor: onnx.TensorProto) -> str:
    sha = hashlib.sha1()
    for chunk in chunks(tensor):
        sha.update(chunk)
    return sha.hexdigest()


def materialised(tensor: onnx.TensorProto) -> onnx.TensorProto:
    """A copy of a lazy tensor with its bytes inline (the tensor itself when it is not lazy)."""
    if not is_lazy(tensor):
        return tensor
    copy = tensor_head(tensor)
    copy.raw_data = read_bytes(tensor)
    return copy


def tensor_head(tensor: onnx.TensorProto) -> onnx.TensorProto:
    """A new tensor with ``tensor``'s name, dtype, doc string and dims, and no values (proto2: a doc string
    is set only when the tensor has one, since an empty one set would be written)."""
    head = onnx.TensorProto()
    head.name, head.data_type = tensor.name, tensor.data_type
    if tensor.HasField("doc_string"):
        head.doc_string = tensor.doc_string
    head.dims.extend(tensor.dims)
    return head


def attach(graph: gs.Graph) -> int:
    """Give every constant of ``graph`` (and its subgraphs) that stands for a lazy tensor values that read it
    from its file; returns how many."""
    count = 0
    for tensor in graph.tensors().values():
        values = getattr(tensor, "_values", None)
        if type(values) is gs.ir.tensor.LazyValues and is_lazy(values.tensor):
            tensor._values = LazyFileValues(values.tensor)
            # graphsurgeon would stamp "external" on the tensor it exports once the values are loaded (with no
            # file to name); unloaded, it exports the reference itself whatever this says
            tensor.data_location = None
            count += 1
    for node in graph.nodes:
        for value in node.attrs.values():
            if isinstance(value, gs.Graph):
                count += attach(value)
    return count


def _entry(tensor: onnx.TensorProto, key: str) -> str:
    return next((e.value for e in tensor.external_data if e.key == key), "")


def _int_entry(tensor: onnx.TensorProto, key: str, default: int) -> int:
    value = _entry(tensor, key)
    return int(value) if value else default


def _set_entries(tensor: onnx.TensorProto, entries: dict[str, str]) -> None:
    kept = [(e.key, e.value) for e in tensor.external_data if e.key not in entries]
    del tensor.external_data[:]
    for key, value in [*entries.items(), *kept]:
        entry = tensor.external_data.add()
        entry.key, entry.value = key, value
