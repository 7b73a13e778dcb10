"""TFLite sources: a ``.tflite`` file (or a zoo entry built into one) → tf2onnx's TFLite path.

The parent side (:mod:`.source`) starts nothing but the TFLite worker; everything that imports TensorFlow
or the interpreter (:mod:`.child`, :mod:`.build`, :mod:`.interpreter`) runs in that worker. ``save_tflite``
writes a ``.tflite`` from a Keras source (float or full-int8), for users and tests.
"""

from onnxmend.exporters.tflite.build import save_tflite

__all__ = ["save_tflite"]
