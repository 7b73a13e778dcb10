"""Keras and TensorFlow sources as a :class:`~onnxmend.runtime.runners.base.Runner`.

A ``keras.Model`` runs untouched in a ``tf.function`` with ``training=False`` (any batch size); a
SavedModel runs through its ``serving_default`` signature. ``capture`` builds a functional sub-model whose
outputs are the named operations' outputs — layers, and the ``keras.ops`` calls between them — (functional
and Sequential models; a subclassed model has no graph to tap and says so), run in a ``tf.function`` too.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from onnxmend.core.deps import require
from onnxmend.core.errors import OnnxmendError
from onnxmend.core.specs import TensorSpec
from onnxmend.exporters.base import SourceModel
from onnxmend.exporters.keras.calls import call_model, tf_shape
from onnxmend.runtime.runners.base import Arrays, check_feeds


class KerasRunner:
    def __init__(self, source: SourceModel) -> None:
        tf = require("tensorflow")
        self.source = source
        self.framework = source.framework
        self._tap: tuple[tuple[str, ...], Any] | None = None
        # any batch size: the model's own call, the tap models of capture and the timed call share it
        self._signature = signature = [tf.TensorSpec((None, *tf_shape(s.shape)[1:]), s.dtype, name=s.name)
                                       for s in source.inputs]
        if source.kind == "keras-model":
            names = source.output_names
            self._function = tf.function(lambda *args: call_model(source.model, args, names),
                                         input_signature=signature, autograph=False)
        else:  # a SavedModel's serving call, which returns a dict already
            self._function = tf.function(source.model, input_signature=signature, autograph=False)

    @property
    def label(self) -> str:
        return "keras tf.function (training=False)" if self.source.kind == "keras-model" else "tensorflow SavedModel"

    @property
    def inputs(self) -> list[TensorSpec]:
        return list(self.source.inputs)

    def _tensors(self, feeds: Arrays) -> list[Any]:
        tf = require("tensorflow")
        check_feeds(self.source.inputs, feeds)
        return [tf.convert_to_tensor(np.asarray(feeds[s.name], dtype=s.dtype)) for s in self.source.inputs]

    def run(self, feeds: Arrays) -> dict[str, np.ndarray]:
        result = self._function(*self._tensors(feeds))
        return {name: value.numpy() for name, value in result.items()}

    def capture(self, feeds: Arrays, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        keras = require("keras")
        if self.source.kind != "keras-model" or not getattr(self.source.model, "inputs", None):
            raise OnnxmendError("This Keras source has no layer graph to tap (a SavedModel or a subclassed model).")
        model = self.source.model
        # operations: the layers and the keras.ops calls between them (a residual ``add``)
        layers = {layer.name: layer for layer in getattr(model, "operations", None) or model.layers}
        wanted = list(names) if names is not None else [n for n, l in layers.items() if not _is_input(l)]
        unknown = [n for n in wanted if n not in layers]
        if unknown:
            raise OnnxmendError(f"The Keras model has no layer named {unknown[0]!r}.")
        if self._tap is None or self._tap[0] != tuple(wanted):  # the last tap model is kept for the same names
            self._tap = None
            self._tap = (tuple(wanted), self._tap_function(
                keras.Model(inputs=model.inputs, outputs=[layers[n].output for n in wanted])))
        values = self._tap[1](*self._tensors(feeds))
        values = values if isinstance(values, (list, tuple)) else [values]
        return {n: np.asarray(v) for n, v in zip(wanted, values)}

    def _tap_function(self, tap: Any) -> Callable[..., Any]:
        """The tap model in a ``tf.function`` (traced once per tap): called eagerly, a Keras model runs op by
        op, several times slower than the plain inference it is compared with."""
        tf = require("tensorflow")
        single = len(self.source.model.inputs) == 1
        return tf.function(lambda *args: tap(args[0] if single else list(args), training=False),
                           input_signature=self._signature, autograph=False)

    def timed_call(self, feeds: Arrays) -> Callable[[], object]:
        tensors = self._tensors(feeds)
        return lambda: self._function(*tensors)


def _is_input(layer: Any) -> bool:
    return type(layer).__name__ == "InputLayer"
