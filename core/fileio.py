"""Reading models with clear errors, and writing every output atomically (temp file, then rename)."""

from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable, Iterator

import onnx

from onnxmend.core.errors import OnnxmendError
from onnxmend.core.large import is_heavy, model_bytes, tensor_bytes
from onnxmend.core.lazy import LAZY_MIN_BYTES, is_lazy, make_lazy
from onnxmend.core.weight_files import write_external, write_streamed
from onnxmend.core.wellformed import check_structure, check_tensor_data, tensors

# Protobuf cannot serialise a single message past 2 GiB; from this size (estimated from the tensors) we
# write external data.
EXTERNAL_DATA_THRESHOLD = 1 << 30


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:  # a parent that is a file, no permission, a read-only or full disk
        blocker = next((p for p in target.parents if p.exists() and not p.is_dir()), None)
        why = f"{blocker} is a file, not a folder" if blocker else (exc.strerror or str(exc))
        raise OnnxmendError(f"Cannot write {target}: {why}.") from exc
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates 0600 files; give the result the permissions a plain open() would have.
        if tmp_path.exists():
            os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def write_text(target: str | os.PathLike[str], text: str) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_json(target: str | os.PathLike[str], data: object) -> Path:
    return write_text(target, json_text(data) + "\n")


def json_text(data: object, indent: int | None = 2, default: Callable[[object], object] | None = None) -> str:
    """``data`` as strict JSON: numpy values become numbers and lists, and the non-finite floats JSON has no
    word for (a NaN epsilon read from a file) the strings ``"NaN"``, ``"Infinity"``, ``"-Infinity"``;
    ``default`` turns any other object into something JSON can hold (else it is an error)."""
    return json.dumps(_finite(data), indent=indent, sort_keys=False, default=default or _json_default, allow_nan=False)


def _finite(value: object) -> object:
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):  # numpy arrays and scalars
        return _finite(value.tolist())
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value


def _json_default(value: object) -> object:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def save_model(model: onnx.ModelProto, target: str | os.PathLike[str],
               external_threshold: int | None = None) -> Path:
    """Save atomically; models of ``external_threshold`` bytes or more (``EXTERNAL_DATA_THRESHOLD``, 1 GiB, by
    default; 0 always) go to external data (``NAME.onnx.data``) beside the file. ``model`` is not changed
    (nor copied)."""
    target = Path(target)
    if external_threshold is None:
        external_threshold = EXTERNAL_DATA_THRESHOLD
    if model_bytes(model) < external_threshold:
        with atomic_path(target) as tmp:
            if not is_heavy(model):
                onnx.save_model(model, str(tmp))
            else:  # one initializer serialised at a time (a weight still in a file: copied in from there)
                with open(tmp, "wb") as stream:
                    write_streamed(model, stream)
        return target
    data_name = target.name + ".data"
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        # Both files are written in a private folder and moved into place data first, model last.
        write_external(model, staging / target.name, data_name)
        if (staging / data_name).exists():
            os.replace(staging / data_name, target.parent / data_name)
        os.replace(staging / target.name, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def load_model(path: str | os.PathLike[str]) -> onnx.ModelProto:
    """Load an ONNX file, turning every way it can fail into one sentence.

    External data is read only from files inside the model's own folder; a location that points elsewhere
    (an absolute path, ``..``, a link out of the folder) or a missing data file is named in the error.
    """
    return load_model_and_layout(path)[0]


def load_model_and_layout(path: str | os.PathLike[str], lazy: bool = False) -> tuple[onnx.ModelProto, bool]:
    """:func:`load_model`, and whether the file kept its tensors in external data (so that a rewrite of
    it can be saved the same way).

    ``lazy``: a heavy model's big external initializers are not read in; they keep pointing into the data
    file (:mod:`onnxmend.core.lazy`), which must stay in place while the model is in use."""
    path = Path(path)
    if not path.exists():
        raise OnnxmendError(f"{path} does not exist.")
    if path.is_dir():
        raise OnnxmendError(f"{path} is a directory, not an ONNX file.")
    if not path.is_file():
        raise OnnxmendError(f"{path} is not a regular file (a pipe or a device); give an ONNX file.")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:  # protobuf raises DecodeError and friends
        raise OnnxmendError(f"{path} is not a readable ONNX model ({type(exc).__name__}).") from exc
    if not model.graph.node and not model.graph.output:
        raise OnnxmendError(f"{path} is not an ONNX model (it parsed as an empty graph).")
    check_structure(model, path)
    locations = external_locations(model)
    if locations:
        _check_external(path, locations)
        try:
            if lazy and is_heavy(model):
                _load_lazily(model, path.parent)
            else:
                onnx.load_external_data_for_model(model, str(path.parent))
        except Exception as exc:  # a truncated data file, offsets past its end
            raise OnnxmendError(f"{path}'s external data cannot be read ({type(exc).__name__}: {str(exc)[:160]}).") from exc
    check_tensor_data(model, path)
    return model, bool(locations)


def _load_lazily(model: onnx.ModelProto, folder: Path) -> None:
    """Big external initializers of the main graph point into their file; every other external tensor is
    read in."""
    for tensor in model.graph.initializer:
        size = tensor_bytes(tensor)
        if tensor.data_location == onnx.TensorProto.EXTERNAL and size >= LAZY_MIN_BYTES:
            make_lazy(tensor, folder, size)
    for stored in tensors(model):
        tensor = stored.tensor
        if tensor.data_location == onnx.TensorProto.EXTERNAL and not is_lazy(tensor):
            onnx.external_data_helper.load_external_data_for_tensor(tensor, str(folder))


def external_locations(model: onnx.ModelProto) -> list[str]:
    """The external-data file names a model's tensors refer to (initializers, attributes, subgraphs)."""
    return sorted({entry.value for stored in tensors(model) if stored.tensor.data_location == onnx.TensorProto.EXTERNAL
                   for entry in stored.tensor.external_data if entry.key == "location" and entry.value})


def _check_external(path: Path, locations: list[str]) -> None:
    folder = path.parent.resolve()
    for location in locations:
        target = (path.parent / location).resolve()
        if Path(location).is_absolute() or (folder != target and folder not in target.parents):
            raise OnnxmendError(f"{path} refers to external data outside its folder ({location}); onnxmend reads "
                                "external data only from files beside the model.")
        if not target.is_file():
            raise OnnxmendError(f"{path} refers to external data {location}, which is not in {path.parent}.")
