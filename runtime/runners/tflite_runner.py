"""A ``.tflite`` model on the TFLite interpreter — the child side of
:class:`~onnxmend.runtime.runners.remote_runner.RemoteRunner`, run in the TFLite worker.

The interpreter is ai-edge-litert's (TensorFlow's deprecated ``tf.lite.Interpreter`` only where
ai-edge-litert is missing; :mod:`onnxmend.exporters.tflite.interpreter`). Inputs and outputs go by the
names the exporter gave them; a batch other than the model's own resizes the input tensors. ``capture``
runs a second interpreter that keeps every tensor (``experimental_preserve_all_tensors=True``, no default
delegate) and returns each op's outputs by TFLite tensor name — the names tf2onnx gives the ONNX tensors.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from onnxmend.core.errors import OnnxmendError
from onnxmend.exporters.remote import Recipe, live
from onnxmend.exporters.tflite.interpreter import io_tensors, make_interpreter, runtime_name

_INTERPRETERS: dict[tuple[str, bool], Any] = {}


def _interpreter(key: str, recipe: Recipe, preserve_all: bool = False) -> Any:
    if (key, preserve_all) not in _INTERPRETERS:
        _INTERPRETERS[key, preserve_all] = make_interpreter(live(key, recipe), preserve_all)
    return _INTERPRETERS[key, preserve_all]


def _feed(interpreter: Any, inputs: Sequence[np.ndarray]) -> None:
    named, _ = io_tensors(interpreter)
    if len(named) != len(inputs):
        raise OnnxmendError(f"The TFLite model takes {len(named)} input(s), not {len(inputs)}.")
    if any(tuple(d["shape"]) != x.shape for (_, d), x in zip(named, inputs)):
        for (_, d), x in zip(named, inputs):
            interpreter.resize_tensor_input(d["index"], list(x.shape))
        interpreter.allocate_tensors()
    for (_, d), x in zip(named, inputs):
        interpreter.set_tensor(d["index"], np.ascontiguousarray(x, dtype=d["dtype"]))


def describe(key: str, recipe: Recipe) -> str:
    return f"{runtime_name()} interpreter"


def run(key: str, recipe: Recipe, inputs: list[np.ndarray]) -> list[np.ndarray]:
    interpreter = _interpreter(key, recipe)
    _feed(interpreter, inputs)
    interpreter.invoke()
    _, outputs = io_tensors(interpreter)
    return [np.array(interpreter.get_tensor(d["index"])) for _, d in outputs]


def capture(key: str, recipe: Recipe, inputs: list[np.ndarray], names: list[str] | None) -> dict[str, np.ndarray]:
    interpreter = _interpreter(key, recipe, preserve_all=True)
    _feed(interpreter, inputs)
    interpreter.invoke()
    details = {d["index"]: d["name"] for d in interpreter.get_tensor_details()}
    produced = {details[int(i)]: int(i) for op in interpreter._get_ops_details() for i in op["outputs"] if int(i) in details}
    wanted = list(names) if names is not None else list(produced)
    unknown = [n for n in wanted if n not in produced]
    if unknown:
        raise OnnxmendError(f"The TFLite model has no op output named {unknown[0]!r}.")
    return {n: np.array(interpreter.get_tensor(produced[n])) for n in wanted}


def timed(key: str, recipe: Recipe, inputs: list[np.ndarray]) -> Callable[[], object]:
    interpreter = _interpreter(key, recipe)
    _feed(interpreter, inputs)
    return interpreter.invoke
