"""``zoo:NAME``: build a reference model from :mod:`onnxmend.models` and export it with its framework's exporter.

Torch and Keras entries are built here; TFLite, Paddle and MindSpore entries are built and exported in
their framework's worker (:mod:`onnxmend.exporters.remote`), never in this process.
"""

from __future__ import annotations

from onnxmend.core.errors import OnnxmendError
from onnxmend.exporters.base import Export
from onnxmend.exporters.options import ExportOptions


def export_zoo(name: str, options: ExportOptions) -> Export:
    """Build zoo model ``name`` with ``options.seed`` and export it with the exporter of its framework."""
    from onnxmend.models import build, zoo_entry

    spec = zoo_entry(name)
    if options.weights:
        raise OnnxmendError(f"Zoo models build their own seeded weights; drop --weights for zoo:{name}.")
    if spec.framework == "tflite":
        from onnxmend.exporters.tflite.source import export_tflite_zoo

        return export_tflite_zoo(name, options)
    if spec.framework == "paddle":
        from onnxmend.exporters.paddle.source import export_paddle_zoo

        return export_paddle_zoo(name, options)
    if spec.framework == "mindspore":
        from onnxmend.exporters.mindspore.source import export_mindspore_zoo

        return export_mindspore_zoo(name, options)
    model = build(name, options.seed)
    source = f"zoo:{name}"
    if spec.framework == "onnx":
        from onnxmend.exporters.onnx_file import export_onnx_model

        return export_onnx_model(model, source, options)
    if spec.framework == "torch":
        from onnxmend.exporters.pytorch.export import export_module

        return export_module(
            model, source, options, input_names=[s.name for s in spec.inputs],
            output_names=list(spec.outputs), value_ranges=spec.value_ranges,
        )
    from onnxmend.exporters.keras.source import export_keras_model

    return export_keras_model(model, source, options, value_ranges=spec.value_ranges or None)
