"""ONNX pass-through: ``model.onnx`` as a source. Its source runner is onnxruntime on the untouched
original, so ``fix`` and ``convert`` prove a rewritten graph against the file the user gave."""

from __future__ import annotations

import time

from onnxmend.exporters.base import Export
from onnxmend.exporters.options import ExportOptions
from onnxmend.core.fileio import load_model
from onnxmend.core.specs import output_specs_from_model, specs_from_model


def export_onnx_file(source: str, options: ExportOptions) -> Export:
    start = time.perf_counter()
    model = load_model(source)
    original = model.SerializeToString()

    def run(feeds):
        from onnxmend.runtime.session import create_session

        session = create_session(original, provider="cpu", opt_level="disable")
        return session.run(feeds)

    specs = specs_from_model(model)
    overrides = {a.name: a for a in options.inputs}
    specs = [
        type(s)(s.name, overrides[s.name].shape, overrides[s.name].dtype) if s.name in overrides else s
        for s in specs
    ]
    return Export(
        model, specs, output_specs_from_model(model), run, "onnx", "none (ONNX file)", source,
        time.perf_counter() - start,
    )
