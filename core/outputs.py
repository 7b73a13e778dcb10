"""Which files onnxmend may overwrite: its own, never a user's file, unless the user says ``--force``.

A folder onnxmend writes into gets a marker (``.onnxmend``); a model it writes carries ``onnxmend.version``
in its metadata; an outputs file (``--save-outputs``) starts with :data:`DATA_FORMAT` (the first key of a
.json, the archive comment of an .npz). An existing output that has none of these was not written by
onnxmend, and writing over it is refused with one sentence.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Iterable

import onnx

from onnxmend.core.errors import OnnxmendError

MARKER = ".onnxmend"
FORCE_HINT = "choose another -o or pass --force"
DATA_FORMAT = "onnxmend.outputs/1"
DATA_HEAD = '{"onnxmend": {"format": "' + DATA_FORMAT + '"'


def claim_dir(folder: Path, names: Iterable[str], force: bool = False) -> None:
    """Make ``folder`` onnxmend's to write ``names`` into, or refuse when it holds such files of the user's."""
    if folder.exists() and not folder.is_dir():
        raise OnnxmendError(f"{folder} exists and is not a directory; {FORCE_HINT.split(' or ')[0]}.")
    if folder.is_dir() and not force and not (folder / MARKER).exists():
        theirs = sorted(n for n in names if (folder / n).exists())
        if theirs:
            raise OnnxmendError(f"{folder} already holds {', '.join(theirs)}, which onnxmend did not write; "
                                f"{FORCE_HINT}.")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / MARKER).write_text("onnxmend writes its outputs in this folder\n", encoding="utf-8")
    except OSError as exc:
        blocker = next((p for p in folder.parents if p.exists() and not p.is_dir()), None)
        why = f"{blocker} is a file, not a folder" if blocker else (exc.strerror or str(exc))
        raise OnnxmendError(f"Cannot write into {folder}: {why}.") from exc


def claim_file(path: Path, force: bool = False, option: str = "-o") -> None:
    """Refuse to replace an existing ``path`` that is not a file onnxmend wrote (unless ``force``).

    ``option`` is the flag that named ``path``, for the sentence (``-o``, ``--save-outputs``)."""
    if not path.exists() or force:
        return
    if path.is_dir():
        raise OnnxmendError(f"{path} is a directory; {option} names the file to write.")
    if not written_by_onnxmend(path):
        hint = FORCE_HINT if option == "-o" else f"choose another {option} file or pass --force"
        raise OnnxmendError(f"{path} exists and was not written by onnxmend; {hint}.")


def claim_data_file(model_path: Path, force: bool = False) -> None:
    """Refuse to replace ``MODEL.onnx.data`` (the external data of ``model_path``) unless onnxmend wrote the
    model beside it (or ``force``)."""
    data = model_path.with_name(model_path.name + ".data")
    if data.exists() and not force and not (model_path.is_file() and written_by_onnxmend(model_path)):
        raise OnnxmendError(f"{data} exists and was not written by onnxmend; {FORCE_HINT}.")


def written_by_onnxmend(path: Path) -> bool:
    """True for a model whose metadata carries ``onnxmend.version`` (read without its weights), or an
    outputs file onnxmend wrote (``.npz``/``.json`` starting with :data:`DATA_FORMAT`)."""
    if path.suffix.lower() in (".npz", ".json"):
        return _data_written_by_onnxmend(path)
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # not a model at all: certainly not ours
        return False
    return any(p.key == "onnxmend.version" for p in model.metadata_props)


def _data_written_by_onnxmend(path: Path) -> bool:
    try:
        if path.suffix.lower() == ".npz":
            with zipfile.ZipFile(path) as archive:
                return archive.comment.decode("utf-8", "replace").startswith(DATA_HEAD)
        with path.open("rb") as handle:
            return handle.read(len(DATA_HEAD)).decode("utf-8", "replace") == DATA_HEAD
    except (OSError, zipfile.BadZipFile):
        return False
