"""Keras → ``.tflite``, float or full-int8, for the zoo's TFLite entries, the tests and users.

Full-int8 means what a microcontroller or NPU build asks for: ``TFLITE_BUILTINS_INT8`` only, int8 inputs
and outputs, calibrated on seeded synthetic batches drawn from the model's input range (``[-1, 1]`` for
MobileNet-family applications, standard normal otherwise). Runs wherever TensorFlow may be imported: the
TFLite worker, or a user's own script.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from onnxmend.core.deps import require
from onnxmend.core.errors import BadSourceError, OnnxmendError, first_line
from onnxmend.core.fileio import atomic_path

CALIBRATION_BATCHES = 8


def keras_to_tflite(model: Any, int8: bool = False, value_range: tuple[float, float] | None = None,
                    seed: int = 0, int8_io: bool = True) -> bytes:
    """The ``.tflite`` flatbuffer of a ``keras.Model``; ``int8`` makes it full-integer, with int8 I/O
    unless ``int8_io`` is False (then float I/O around int8 kernels: QUANTIZE in, DEQUANTIZE out)."""
    tf = require("tensorflow")
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        shapes = [tuple(d or 1 for d in t.shape) for t in model.inputs]
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: _calibration(shapes, value_range, seed)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bytes(converter.convert())
    except Exception as exc:  # the converter raises its own ConverterError and anything from MLIR
        raise OnnxmendError(f"The TFLite converter could not convert {model.name} ({first_line(exc, 200)}).") from exc


def _calibration(shapes: list[tuple[int, ...]], value_range: tuple[float, float] | None,
                 seed: int) -> Iterator[list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    for _ in range(CALIBRATION_BATCHES):
        if value_range:
            yield [rng.uniform(*value_range, size=s).astype(np.float32) for s in shapes]
        else:
            yield [rng.standard_normal(s).astype(np.float32) for s in shapes]


def keras_source_model(source: str, seed: int = 0) -> tuple[Any, tuple[float, float] | None]:
    """A Keras model and its input range from ``keras:NAME`` (realistic random weights, as ``convert
    keras:NAME`` makes them), a ``.keras``/``.h5`` file, or a Keras ``zoo:NAME``."""
    from onnxmend.exporters.keras import source as keras_source

    if source.startswith("keras:"):
        name = source[len("keras:"):]
        require("keras").utils.set_random_seed(seed)
        model = keras_source.build_application(name)
        value_range = keras_source.application_value_range(name)
        from onnxmend.exporters.keras.init import realistic_random_init

        realistic_random_init(model, seed, value_range=value_range)
        return model, value_range
    if source.startswith("zoo:"):
        from onnxmend.models import build, zoo_entry

        entry = zoo_entry(source[len("zoo:"):])
        if entry.framework not in ("keras", "tflite"):
            raise BadSourceError(f"{source} is a {entry.framework} model; a .tflite is made from a Keras one.")
        ranges = list(entry.value_ranges.values())
        return build(entry.name, seed), (ranges[0] if ranges else None)
    return keras_source.load_keras_file(Path(source)), None


def save_tflite(source: str, path: str | Path, int8: bool = False, seed: int = 0) -> Path:
    """Write ``source`` (``keras:NAME``, a Keras file or a Keras ``zoo:NAME``) as a ``.tflite`` at ``path``."""
    model, value_range = keras_source_model(source, seed)
    path = Path(path)
    data = keras_to_tflite(model, int8=int8, value_range=value_range, seed=seed)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def zoo_tflite(name: str, seed: int = 0) -> bytes:
    """The ``.tflite`` of TFLite zoo entry ``name``: its Keras model, converted as the entry says."""
    from onnxmend.models import build, zoo_entry

    entry = zoo_entry(name)
    ranges = list(entry.value_ranges.values())
    return keras_to_tflite(build(name, seed), int8=entry.quantize == "int8",
                           value_range=ranges[0] if ranges else None, seed=seed)
