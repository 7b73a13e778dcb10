"""dedupe-initializers: byte-identical constants (same dtype, shape and values) share one initializer.

Before::

    B  = [0.1, 0.2] ─ Add ─ …
    B2 = [0.1, 0.2] ─ Add ─ …

After::

    B = [0.1, 0.2] ─ Add ─ …
                   └ Add ─ …

Values are compared by a SHA-1 of their bytes with dtype and shape. A constant graphsurgeon has not loaded
yet is hashed from its tensor's stored bytes (a weight still in the input's data file: read from there in
chunks), so it stays unloaded (and is exported from its own tensor, not
copied through numpy: keras VGG16 held its 0.55 GB of weights once more for each copy).
"""

from __future__ import annotations

import functools
import hashlib
import sys

import numpy as np
import onnx
import onnx_graphsurgeon as gs

from onnxmend.core.graph import replace_uses
from onnxmend.core.lazy import digest, is_lazy
from onnxmend.passes.cleanup.eliminate_dead_nodes import constants
from onnxmend.passes.infra.base import Pass, PassContext, PassResult

# dtypes whose raw bytes are exactly numpy's array bytes (not bfloat16/float8/int4, which load converted).
_RAW_AS_NUMPY = frozenset({
    onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16, onnx.TensorProto.INT8,
    onnx.TensorProto.INT16, onnx.TensorProto.INT32, onnx.TensorProto.INT64, onnx.TensorProto.UINT8,
    onnx.TensorProto.UINT16, onnx.TensorProto.UINT32, onnx.TensorProto.UINT64, onnx.TensorProto.BOOL,
})


class DedupeInitializers(Pass):
    name = "dedupe-initializers"
    fixes = "Makes byte-identical constants (same dtype, shape and values) share one initializer."

    def apply(self, graph: gs.Graph, ctx: PassContext) -> PassResult:
        result = PassResult()
        keep: dict[tuple[str, tuple[int, ...], str], gs.Constant] = {}
        for const in constants(graph).values():
            key = _key(const)
            first = keep.setdefault(key, const)
            if first is not const:
                replace_uses(const, first)
                result.changed += 1
        result.tidy = True  # a reader pointed at an equal constant: no node dies, no order breaks
        return result


PASS = DedupeInitializers


def _key(const: gs.Constant) -> tuple[str, tuple[int, ...], str]:
    """dtype, shape and SHA-1 of the values: from the stored bytes of an unloaded tensor when it has them in
    ``raw_data`` (the bytes numpy would give, little-endian C order) or in a data file, else from the loaded
    array. An unloaded tensor's key is kept on it: its proto is never edited, so the next round (and the
    next pass of a weight in a data file through its bytes) costs nothing."""
    lazy = const._values
    if isinstance(lazy, gs.ir.tensor.LazyValues):
        key = lazy.__dict__.get(_STORED_KEY, False)
        if key is False:
            key = lazy.__dict__[_STORED_KEY] = _stored_key(lazy.tensor)
        if key is not None:
            return key
    values = np.asarray(const.values)
    return str(values.dtype), values.shape, hashlib.sha1(values.tobytes()).hexdigest()


_STORED_KEY = "_onnxmend_dedupe_key"


def _stored_key(tensor: onnx.TensorProto) -> tuple[str, tuple[int, ...], str] | None:
    dims = tuple(int(d) for d in tensor.dims)
    if _in_file(tensor):
        return _dtype(tensor.data_type), dims, digest(tensor)
    raw = _raw_bytes(tensor)
    return None if raw is None else (_dtype(tensor.data_type), dims, hashlib.sha1(raw).hexdigest())


@functools.lru_cache(maxsize=None)
def _dtype(data_type: int) -> str:
    return str(np.dtype(onnx.helper.tensor_dtype_to_np_dtype(data_type)))


def _in_file(tensor: onnx.TensorProto) -> bool:
    """A weight still in the input's data file (:mod:`onnxmend.core.lazy`), hashed from there in chunks."""
    return sys.byteorder == "little" and tensor.data_type in _RAW_AS_NUMPY and is_lazy(tensor)


def _raw_bytes(tensor: onnx.TensorProto) -> bytes | None:
    """The tensor's ``raw_data`` when that is all of its values as numpy lays them out; None otherwise."""
    if (sys.byteorder != "little" or tensor.data_location == onnx.TensorProto.EXTERNAL
            or not tensor.HasField("raw_data") or tensor.data_type not in _RAW_AS_NUMPY):
        return None
    return tensor.raw_data
