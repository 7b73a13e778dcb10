"""ONNX pass-through: ``model.onnx`` as a source. Its source model is the untouched original file's bytes,
which the runtime runs on onnxruntime, so ``fix`` and ``convert`` prove a rewritten graph against the file
the user gave."""

from __future__ import annotations

import time
from dataclasses import replace

import onnx

from onnxmend.core.fileio import load_model
from onnxmend.core.specs import output_specs_from_model, specs_from_model
from onnxmend.exporters.base import Export, SourceModel
from onnxmend.exporters.options import ExportOptions


def export_onnx_file(source: str, options: ExportOptions) -> Export:
    start = time.perf_counter()
    exported = export_onnx_model(load_model(source), source, options)
    exported.seconds = time.perf_counter() - start
    return exported


def export_onnx_model(model: onnx.ModelProto, source: str, options: ExportOptions) -> Export:
    """An ONNX model already in memory as a pass-through source (``--input`` may set its input shapes)."""
    start = time.perf_counter()
    overrides = {a.name: a for a in options.inputs}
    specs = [
        replace(s, shape=overrides[s.name].shape, dtype=overrides[s.name].dtype) if s.name in overrides else s
        for s in specs_from_model(model)
    ]
    outputs = output_specs_from_model(model)
    original = SourceModel("onnx-bytes", "onnx", model.SerializeToString(), tuple(specs), tuple(o.name for o in outputs))
    return Export(model, specs, outputs, original, "onnx", "none (ONNX file)", source, time.perf_counter() - start,
                  declared_inputs=specs_from_model(model), declared_outputs=outputs)
