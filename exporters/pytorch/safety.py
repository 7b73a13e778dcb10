"""Refusing torch files whose loading would run code from the file, unless the user trusts the source.

``torch.export.load`` unpickles parts of a ``.pt2`` archive with ``weights_only=False`` (pickled weights
and constants, custom objects, and the sample inputs when the restricted loader refuses them), and a
crafted pickle runs any command it likes. Before anything is loaded, :func:`check_pt2` reads the archive
as a zip: every member must be one the torch.export format defines, no member may carry compiled code
(AOTInductor, ExecuTorch, MTIA payloads) or a pickled custom object, and every pickle in it must load
with PyTorch's restricted unpickler (``torch.load(weights_only=True)``), i.e. hold tensors and plain
containers only. ``.pt``/``.pth`` files go through the same restricted loader (:func:`load_weights_only`).
``--trust-source`` skips these checks.
"""

from __future__ import annotations

import io
import json
import pickle
import re
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from onnxmend.core.deps import require
from onnxmend.core.errors import BadSourceError, first_line

TRUST_HINT = "onnxmend runs no code from a model file; if you trust this file, pass --trust-source"
_FILES = {"archive_format", "archive_version", "byteorder"}
_CODE_DIRS = ("data/aotinductor/", "data/executorch/", "data/mtia/", "data/mtia", "xl_model_weights/")
_DATA_DIRS = ("models/", "data/weights/", "data/constants/", "data/sample_inputs/", "extra/", ".data/")


def check_pt2(path: Path) -> None:
    """Raise BadSourceError (one sentence) unless ``path`` is a torch.export archive whose loading runs no code."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise BadSourceError(f"{path} is not a torch.export program ({first_line(exc)}).") from exc
    with archive:
        members = {_relative(name): name for name in archive.namelist() if not name.endswith("/")}
        for relative in members:
            _check_member(path, relative)
        if not any(r.startswith("models/") and r.endswith(".json") for r in members):
            raise BadSourceError(f"{path} is not a torch.export program (it has no models/*.json).")
        for relative, name in members.items():
            if _is_pickle_payload(relative, archive, members):
                _check_restricted(path, relative, archive.read(name))


def load_weights_only(path: Path) -> Any:
    """``torch.load`` with the restricted unpickler, the refusal said in one sentence."""
    torch = require("torch")
    try:
        return torch.load(str(path), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        raise BadSourceError(f"{path} holds pickled objects other than tensors ({_refused_global(exc)}); "
                             f"unpickling it would run code from the file. {TRUST_HINT}.") from exc
    except Exception as exc:  # a corrupt or foreign file
        raise BadSourceError(f"{path} is not a readable torch file ({type(exc).__name__}: {first_line(exc, 200)}).") from exc


def _relative(name: str) -> str:
    """A member's path below the archive's root folder (torch names it after the file or "package")."""
    parts = PurePosixPath(name).parts
    return str(PurePosixPath(*parts[1:])) if len(parts) > 1 else name


def _check_member(path: Path, relative: str) -> None:
    if relative.startswith(_CODE_DIRS):
        raise BadSourceError(f"{path} carries compiled or backend code ({relative}); {TRUST_HINT}.")
    if relative in _FILES or relative.startswith(_DATA_DIRS):
        base = PurePosixPath(relative).name
        if relative.startswith("data/constants/") and base.startswith(("custom_obj_", "opaque_obj_")):
            raise BadSourceError(f"{path} holds a pickled custom object ({relative}), which loading would run; "
                                 f"{TRUST_HINT}.")
        return
    raise BadSourceError(f"{path} has a member the torch.export format does not define ({relative}); {TRUST_HINT}.")


def _is_pickle_payload(relative: str, archive: zipfile.ZipFile, members: dict[str, str]) -> bool:
    """Sample inputs always; weights and tensor constants when their config says they are pickled."""
    if relative.startswith("data/sample_inputs/"):
        return True
    folder = "data/weights/" if relative.startswith("data/weights/") else "data/constants/"
    if not relative.startswith(folder) or relative.endswith(".json"):
        return False
    base = PurePosixPath(relative).name
    for config_name in (r for r in members if r.startswith(folder) and r.endswith("_config.json")):
        try:
            config = json.loads(archive.read(members[config_name])).get("config", {})
        except (ValueError, AttributeError):
            return True  # an unreadable config: treat the payload as a pickle and check it
        if any(isinstance(m, dict) and m.get("path_name") == base and m.get("use_pickle") for m in config.values()):
            return True
    return False


def _check_restricted(path: Path, relative: str, data: bytes) -> None:
    torch = require("torch")
    try:
        torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except pickle.UnpicklingError as exc:
        raise BadSourceError(f"{path} holds a pickle that is not plain tensors ({relative}: {_refused_global(exc)}); "
                             f"loading it would run code from the file. {TRUST_HINT}.") from exc
    except Exception as exc:  # not a torch.save payload at all: a foreign or corrupt member
        raise BadSourceError(f"{path} holds an unreadable payload ({relative}: {first_line(exc, 160)}).") from exc


def _refused_global(exc: BaseException) -> str:
    """The global torch's restricted unpickler refused, e.g. "it would import posix.system"."""
    match = re.search(r"(?:unsupported GLOBAL|Unsupported global: GLOBAL) ([\w.]+)", str(exc))
    return f"it would import {match.group(1)}" if match else first_line(exc, 160)
