"""Exporters: turn a SOURCE string into an :class:`~onnxmend.exporters.base.Export`.

SOURCE forms: ``model.onnx``; ``torch:pkg.module:factory``, ``path/file.py:factory``, ``model.pt2``;
``model.keras``, ``model.h5``, a SavedModel directory, ``keras:NAME`` (keras.applications);
``zoo:NAME`` (the built-in reference zoo). Frameworks are imported only when a source needs them.
"""

from __future__ import annotations

from pathlib import Path

from onnxmend.core.errors import BadSourceError
from onnxmend.exporters.base import Export, SourceModel
from onnxmend.exporters.options import ExportOptions, InputArg, parse_input_arg

__all__ = [
    "Export", "ExportOptions", "InputArg", "SourceModel", "export", "load_source", "parse_input_arg", "source_kind",
]


def source_kind(source: str) -> str:
    """Which exporter handles ``source``: onnx, torch, keras or zoo. Raises BadSourceError otherwise."""
    if source.startswith("zoo:"):
        return "zoo"
    if source.startswith("keras:"):
        return "keras"
    if source.startswith("torch:"):
        return "torch"
    if ":" in source and source.rsplit(":", 1)[0].endswith(".py"):
        return "torch"
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return "onnx"
    if suffix in (".pt2", ".pt", ".pth"):
        return "torch"
    if suffix in (".keras", ".h5", ".hdf5"):
        return "keras"
    if path.is_dir():
        if (path / "saved_model.pb").exists() or (path / "saved_model.pbtxt").exists():
            return "keras"
        raise BadSourceError(f"{path} is a directory but not a SavedModel (it has no saved_model.pb).")
    if not path.exists() and suffix in ("", ".py"):
        raise BadSourceError(
            f"Unknown source {source!r}; give a model file (.onnx, .keras, .h5, .pt2, .pt), a SavedModel "
            "directory, keras:NAME, torch:pkg.module:factory, file.py:factory or zoo:NAME."
        )
    if not path.exists():
        raise BadSourceError(f"{path} does not exist.")
    raise BadSourceError(f"onnxmend does not know how to load {path.name} (unknown file type {suffix!r}).")


def export(source: str, options: ExportOptions | None = None) -> Export:
    """Export ``source`` to ONNX with its source runner."""
    options = options or ExportOptions()
    kind = source_kind(source)
    if kind == "onnx":
        from onnxmend.exporters.onnx_file import export_onnx_file

        return export_onnx_file(source, options)
    if kind == "torch":
        from onnxmend.exporters.pytorch.export import export_torch_source

        return export_torch_source(source, options)
    if kind == "keras":
        from onnxmend.exporters.keras.source import export_keras_source

        return export_keras_source(source, options)
    from onnxmend.exporters.zoo import export_zoo

    return export_zoo(source[len("zoo:"):], options)


def load_source(source: str, options: ExportOptions | None = None) -> SourceModel:
    """The source model alone, loaded natively when its framework allows (Keras files and applications,
    torch factories), else through :func:`export` (SavedModels, ``.pt2``, ONNX files, the zoo)."""
    options = options or ExportOptions()
    kind = source_kind(source)
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
