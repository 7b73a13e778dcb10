"""Arrays in files: ``.npz``, ``.npy`` and JSON read into samples (one dict of arrays per sample), and outputs
written back as ``.npz`` or JSON.

Reading never runs code from the file: ``.npz``/``.npy`` load with ``allow_pickle=False``, and each array's
header is read first, so an object (pickled) array or one past :data:`MAX_INPUT_BYTES` is refused in one
sentence before its data is read. The forms read:

- ``.npz``: one sample, one array per input (``np.savez("in.npz", x=...)``); or several, keyed
  ``sample<i>/<name>`` (the form ``--save-outputs`` writes for several samples);
- ``.npy``: one array (single-input models);
- JSON: ``{"name": nested list, ...}``, a list of such objects (one per sample), or the form
  ``--save-outputs`` writes (``{"onnxmend": {...}, "samples": [...]}``).

Written outputs start with :data:`~onnxmend.core.outputs.DATA_FORMAT` (the archive comment of an .npz, the
first key of a JSON file), so onnxmend knows a file it may overwrite; every write is atomic.
"""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path
from typing import IO, Mapping, Sequence

import numpy as np

from onnxmend.core.errors import OnnxmendError, first_line
from onnxmend.core.fileio import atomic_path
from onnxmend.core.outputs import DATA_FORMAT
from onnxmend.runtime.inputs import MAX_INPUT_BYTES

Sample = dict[str, np.ndarray]
SAMPLE_KEY = re.compile(r"^sample(\d+)/(.+)$")
ARRAY_SUFFIXES = (".npz", ".npy", ".json")


def read_arrays(path: Path) -> list[Sample]:
    """The samples stored in an .npz, .npy or .json file (see the module docstring)."""
    suffix = path.suffix.lower()
    if path.stat().st_size > MAX_INPUT_BYTES:
        raise OnnxmendError(f"{path} is {path.stat().st_size / 1e9:.1f} GB; --load-inputs reads files up to "
                            f"{MAX_INPUT_BYTES / 1e9:.0f} GB.")
    if suffix == ".npz":
        return group_samples(_read_npz(path))
    if suffix == ".npy":
        return [{path.stem: _read_npy(path)}]
    return _read_json(path)


def group_samples(arrays: Mapping[str, np.ndarray]) -> list[Sample]:
    """Keys ``sample<i>/<name>`` as samples i = 0, 1, ...; any other set of keys is one sample."""
    matches = {key: SAMPLE_KEY.match(key) for key in arrays}
    if not arrays or not all(matches.values()):
        return [dict(arrays)]
    grouped: dict[int, Sample] = {}
    for key, match in matches.items():
        grouped.setdefault(int(match.group(1)), {})[match.group(2)] = arrays[key]  # type: ignore[union-attr]
    return [grouped[i] for i in sorted(grouped)]


def _read_npz(path: Path) -> Sample:
    if not zipfile.is_zipfile(path):
        raise OnnxmendError(f"{path} is not a readable .npz file (it is not a zip archive).")
    try:
        with zipfile.ZipFile(path) as archive:
            members = [m for m in archive.namelist() if not m.endswith("/")]
            for member in members:
                if not member.endswith(".npy"):
                    raise OnnxmendError(f"{path} holds {member}, which is not a .npy array; an .npz for "
                                        "--load-inputs holds only arrays (np.savez).")
                with archive.open(member) as handle:
                    _check_header(handle, f"{path}'s array '{member[:-4]}'")
            arrays = {}
            for member in members:
                with archive.open(member) as handle:
                    arrays[member[:-4]] = np.lib.format.read_array(handle, allow_pickle=False)
    except OnnxmendError:
        raise
    except Exception as exc:  # BadZipFile (CRC), zlib.error, EOFError, ValueError from a damaged header
        raise OnnxmendError(f"{path} is not a readable .npz file ({type(exc).__name__}: {first_line(exc, 120)}).") from exc
    if not arrays:
        raise OnnxmendError(f"{path} holds no arrays.")
    return arrays


def _read_npy(path: Path) -> np.ndarray:
    try:
        with path.open("rb") as handle:
            _check_header(handle, str(path))
            handle.seek(0)
            return np.lib.format.read_array(handle, allow_pickle=False)
    except OnnxmendError:
        raise
    except Exception as exc:  # not an .npy at all, or a truncated one
        raise OnnxmendError(f"{path} is not a readable .npy file ({type(exc).__name__}: {first_line(exc, 120)}).") from exc


def _check_header(handle: IO[bytes], what: str) -> None:
    """Refuse object arrays and arrays past the size limit from the header alone."""
    version = np.lib.format.read_magic(handle)
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, _fortran, dtype = reader(handle)
    if dtype.hasobject:
        raise OnnxmendError(f"{what} holds Python objects, which can only be read by unpickling them; onnxmend "
                            "reads plain numeric arrays only (save them with a numeric dtype).")
    size = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
    if size > MAX_INPUT_BYTES:
        raise OnnxmendError(f"{what} would take {size / 1e9:.0f} GB; --load-inputs reads up to "
                            f"{MAX_INPUT_BYTES / 1e9:.0f} GB.")


def _read_json(path: Path) -> list[Sample]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise OnnxmendError(f"{path} is not valid JSON ({first_line(exc, 120)}).") from exc
    if isinstance(data, dict) and isinstance(data.get("onnxmend"), dict) and "samples" in data:
        data = data["samples"]
    samples = data if isinstance(data, list) else [data]
    if not samples or not all(isinstance(s, dict) and s for s in samples):
        raise OnnxmendError(f"{path} must hold an object of arrays ({{\"x\": [[...]]}}) or a list of such "
                            "objects, one per sample.")
    return [{name: _json_array(value, f"{path}'s '{name}'" + (f" (sample {i})" if len(samples) > 1 else ""))
             for name, value in sample.items()} for i, sample in enumerate(samples)]


def _json_array(value: object, what: str) -> np.ndarray:
    try:
        array = np.asarray(value)
    except ValueError as exc:  # ragged nesting
        raise OnnxmendError(f"{what} is not a rectangular array (its rows have different lengths).") from exc
    if array.dtype.kind not in "biuf":
        raise OnnxmendError(f"{what} holds {_kind(array)}, not numbers.")
    return array


def _kind(array: np.ndarray) -> str:
    return {"U": "text", "S": "text", "O": "mixed or missing values (null, nested objects)"}.get(array.dtype.kind,
                                                                                              str(array.dtype))


def write_arrays(path: Path, samples: Sequence[Mapping[str, np.ndarray]], header: Mapping[str, object]) -> Path:
    """Write ``samples`` to ``path`` (.npz or .json) atomically, marked as onnxmend's (see module docstring)."""
    head = {"format": DATA_FORMAT, **header}
    if path.suffix.lower() == ".json":
        lines = [f'{{"onnxmend": {json.dumps(head)},', ' "samples": [']
        lines += [json.dumps({k: np.asarray(v).tolist() for k, v in s.items()}) + ("," if i < len(samples) - 1 else "")
                  for i, s in enumerate(samples)]
        text = "\n".join(lines + ["]}"]) + "\n"
        with atomic_path(path) as tmp:
            tmp.write_text(text, encoding="utf-8")
        return path
    arrays = samples[0] if len(samples) == 1 else {f"sample{i}/{k}": v for i, s in enumerate(samples) for k, v in s.items()}
    with atomic_path(path) as tmp:
        with tmp.open("wb") as handle:
            np.savez(handle, **{k: np.asarray(v) for k, v in arrays.items()})
        with zipfile.ZipFile(tmp, "a") as archive:
            archive.comment = ('{"onnxmend": ' + json.dumps(head) + "}").encode("utf-8")
    return path
