"""Exporters: turn a SOURCE string into an :class:`~onnxmend.exporters.base.Export`.

SOURCE forms: ``model.onnx``; ``torch:pkg.module:factory``, ``path/file.py:factory``, ``model.pt2``;
``model.keras``, ``model.h5``, a SavedModel directory, ``keras:NAME`` (keras.applications);
``model.tflite``; a Paddle inference model (``model.json`` or ``model.pdmodel`` beside ``model.pdiparams``,
or the folder holding them) and ``paddle:pkg.module:factory``; ``mindspore:pkg.module:factory``;
``zoo:NAME`` (the built-in reference zoo). A ``file.py:factory`` is a torch, Paddle or MindSpore factory
as ``--framework`` says, else as the file's own imports say (:mod:`.factories`). Frameworks are imported
only when a source needs them; TFLite, Paddle and MindSpore only in their own worker process
(:mod:`.remote`).
"""

from __future__ import annotations

from pathlib import Path

from onnxmend.core.errors import BadSourceError
from onnxmend.exporters.base import Export, SourceModel
from onnxmend.exporters.factories import factory_framework, paddle_model_files
from onnxmend.exporters.options import ExportOptions, InputArg, parse_input_arg

__all__ = [
    "Export", "ExportOptions", "InputArg", "SourceModel", "export", "load_source", "parse_input_arg", "source_kind",
]

_PREFIXES = {"zoo:": "zoo", "keras:": "keras", "torch:": "torch", "paddle:": "paddle", "mindspore:": "mindspore"}
_SUFFIXES = {".onnx": "onnx", ".pt2": "torch", ".pt": "torch", ".pth": "torch", ".keras": "keras", ".h5": "keras", ".hdf5": "keras",
             ".tflite": "tflite", ".pdmodel": "paddle"}


def source_kind(source: str, framework: str | None = None) -> str:
    """Which exporter handles ``source``: onnx, torch, keras, tflite, paddle, mindspore or zoo.

    ``framework`` (``--framework``) decides what a ``file.py:factory`` builds. Raises BadSourceError otherwise.
    """
    for prefix, kind in _PREFIXES.items():
        if source.startswith(prefix):
            return kind
    if ":" in source and source.rsplit(":", 1)[0].endswith(".py"):
        return factory_framework(source.rsplit(":", 1)[0], framework)
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix in _SUFFIXES and (suffix != ".pdmodel" or path.exists()):
        return _SUFFIXES[suffix]
    if path.exists() and paddle_model_files(path) is not None:
        return "paddle"
    if path.is_dir():
        if (path / "saved_model.pb").exists() or (path / "saved_model.pbtxt").exists():
            return "keras"
        raise BadSourceError(
            f"{path} is a directory but not a SavedModel (it has no saved_model.pb), nor a Paddle inference "
            "model (no .json or .pdmodel beside its .pdiparams)."
        )
    if not path.exists() and suffix in ("", ".py", ".json", ".pdmodel"):
        raise BadSourceError(
            f"Unknown source {source!r}; give a model file (.onnx, .keras, .h5, .pt2, .pt, .tflite, a Paddle .json/.pdmodel), "
            "a SavedModel directory, keras:NAME, torch:pkg.module:factory, paddle:pkg.module:factory, "
            "mindspore:pkg.module:factory, file.py:factory or zoo:NAME."
        )
    if not path.exists():
        raise BadSourceError(f"{path} does not exist.")
    raise BadSourceError(f"onnxmend does not know how to load {path.name} (unknown file type {suffix!r}).")


def export(source: str, options: ExportOptions | None = None) -> Export:
    """Export ``source`` to ONNX with its source runner."""
    options = options or ExportOptions()
    kind = source_kind(source, options.framework)
    if kind == "onnx":
        from onnxmend.exporters.onnx_file import export_onnx_file

        return export_onnx_file(source, options)
    if kind == "torch":
        from onnxmend.exporters.pytorch.export import export_torch_source

        return export_torch_source(source, options)
    if kind == "keras":
        from onnxmend.exporters.keras.source import export_keras_source

        return export_keras_source(source, options)
    if kind == "tflite":
        from onnxmend.exporters.tflite.source import export_tflite

        return export_tflite(source, options)
    if kind == "paddle":
        from onnxmend.exporters.paddle.source import export_paddle

        return export_paddle(source, options)
    if kind == "mindspore":
        from onnxmend.exporters.mindspore.source import export_mindspore

        return export_mindspore(source, options)
    from onnxmend.exporters.zoo import export_zoo

    return export_zoo(source[len("zoo:"):], options)


def load_source(source: str, options: ExportOptions | None = None) -> SourceModel:
    """The source model alone, loaded natively when its framework allows (Keras files and applications,
    torch factories), else through :func:`export` (SavedModels, ``.pt2``, ONNX files, TFLite, Paddle,
    MindSpore, the zoo)."""
    options = options or ExportOptions()
    kind = source_kind(source, options.framework)
    if kind == "keras" and not Path(source).is_dir():
        from onnxmend.exporters.keras.source import load_keras_source

        return load_keras_source(source, options)
    if kind == "torch" and not source.endswith(".pt2"):
        from onnxmend.exporters.pytorch.export import load_torch_source

        return load_torch_source(source, options)
    exported = export(source, options)
    if exported.source_model is None:
        raise BadSourceError(f"{source} has no source model to run in its own framework.")
    return exported.source_model
