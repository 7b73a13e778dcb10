"""A source model in its framework's own worker process, as a :class:`~onnxmend.runtime.runners.base.Runner`.

TFLite, Paddle and MindSpore models live in a child process (:mod:`onnxmend.exporters.remote` says why);
:class:`RemoteRunner` turns each ``run``/``capture`` into one request to that process, handled there by
the framework's child-side module (``tflite_runner``, ``paddle_runner``, ``mindspore_runner``, each with
``describe``, ``run``, ``capture`` and ``timed``). Inputs travel as numpy arrays in the source's input order
and outputs come back in the source's output order.

``timed_call`` prepares the framework's tensors in the child once (:func:`prepare`); the call it returns
asks the child to run them and send back nothing, so what a benchmark times is the native run plus one
round trip to the process (about a tenth of a millisecond here).
"""

from __future__ import annotations

import importlib
import itertools
from typing import Any, Callable, Sequence

import numpy as np

from onnxmend.core.specs import TensorSpec
from onnxmend.exporters.base import SourceModel
from onnxmend.exporters.remote import ACTORS, RUN_TIMEOUT_S, Recipe, RemoteModel
from onnxmend.runtime.runners.base import Arrays, check_feeds

# source kind -> the child-side module that runs it
CHILD_MODULES = {
    "tflite-model": "onnxmend.runtime.runners.tflite_runner",
    "paddle-layer": "onnxmend.runtime.runners.paddle_runner",
    "paddle-program": "onnxmend.runtime.runners.paddle_runner",
    "mindspore-cell": "onnxmend.runtime.runners.mindspore_runner",
}


class RemoteRunner:
    def __init__(self, source: SourceModel) -> None:
        self.source = source
        self.remote: RemoteModel = source.model
        self.module = CHILD_MODULES[source.kind]
        self.framework = source.framework
        self._label: str | None = None

    def _call(self, function: str, what: str, **kwargs: Any) -> Any:
        return self.remote.worker.call(f"{self.module}:{function}", actor=ACTORS[self.framework], doing=what,
                                       timeout_s=RUN_TIMEOUT_S, key=self.remote.key, recipe=self.remote.recipe, **kwargs)

    @property
    def label(self) -> str:
        if self._label is None:
            self._label = self._call("describe", "describing the source")
        return self._label

    @property
    def inputs(self) -> list[TensorSpec]:
        return list(self.source.inputs)

    def _arrays(self, feeds: Arrays) -> list[np.ndarray]:
        check_feeds(self.source.inputs, feeds)
        return [np.ascontiguousarray(feeds[s.name], dtype=s.dtype) for s in self.source.inputs]

    def run(self, feeds: Arrays) -> dict[str, np.ndarray]:
        outputs = self._call("run", "running the source", inputs=self._arrays(feeds))
        return dict(zip(self.source.output_names, outputs))

    def capture(self, feeds: Arrays, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        return self._call("capture", "capturing the source's intermediates", inputs=self._arrays(feeds),
                          names=list(names) if names is not None else None)

    def timed_call(self, feeds: Arrays) -> Callable[[], object]:
        worker = self.remote.worker
        actor = ACTORS[self.framework]
        token = worker.call(f"{__name__}:prepare", actor=actor, doing="preparing the source for timing",
                            timeout_s=RUN_TIMEOUT_S, module=self.module, key=self.remote.key, recipe=self.remote.recipe,
                            inputs=self._arrays(feeds))
        return lambda: worker.call(f"{__name__}:run_prepared", actor=actor, doing="running the source",
                                   timeout_s=RUN_TIMEOUT_S, token=token)


# --- child side: prepared calls, for timing --------------------------------------------------------

_PREPARED: dict[int, Callable[[], object]] = {}
_TOKENS = itertools.count()


def prepare(module: str, key: str, recipe: Recipe, inputs: list[np.ndarray]) -> int:
    """(In the child) the framework's native call on ``inputs``, kept for :func:`run_prepared`."""
    token = next(_TOKENS)
    _PREPARED[token] = importlib.import_module(module).timed(key, recipe, inputs)
    return token


def run_prepared(token: int) -> None:
    _PREPARED[token]()
