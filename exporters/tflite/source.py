"""The TFLite source, parent side: ``model.tflite`` and TFLite zoo entries, exported in the TFLite worker."""

from __future__ import annotations

from onnxmend.exporters.base import Export
from onnxmend.exporters.options import ExportOptions
from onnxmend.exporters.remote import remote_export

_CHILD = "onnxmend.exporters.tflite.child"


def export_tflite(source: str, options: ExportOptions) -> Export:
    """``model.tflite`` → ONNX (tf2onnx), with the interpreter as its source runner."""
    return remote_export("tflite", "tflite-model", f"{_CHILD}:export_file", source, options=options)


def export_tflite_zoo(name: str, options: ExportOptions) -> Export:
    """A TFLite zoo entry: its Keras model converted to ``.tflite`` in the worker, then exported."""
    return remote_export("tflite", "tflite-model", f"{_CHILD}:export_zoo", f"zoo:{name}", name=name, options=options)
