"""A Paddle source — the child side of :class:`~onnxmend.runtime.runners.remote_runner.RemoteRunner`, run
in the Paddle worker.

A Layer runs in dygraph, eval mode, under ``paddle.no_grad``; a saved inference model runs on its Paddle
Inference predictor (:class:`~onnxmend.exporters.paddle.child.InferenceModel`). ``capture`` registers
forward post-hooks on the Layer's sublayers, keyed by their path (``features.3.conv``), and keeps each
one's first tensor output; a saved program has no sublayers to hook and says so.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from onnxmend.core.deps import require
from onnxmend.core.errors import OnnxmendError
from onnxmend.exporters.paddle.child import InferenceModel
from onnxmend.exporters.remote import Recipe, live
from onnxmend.runtime.runners.hooks import capture_with_hooks


def _flatten(result: Any) -> list[Any]:
    if isinstance(result, dict):
        return [t for v in result.values() for t in _flatten(v)]
    if isinstance(result, (list, tuple)):
        return [t for v in result for t in _flatten(v)]
    return [result] if result is not None else []


def _numpy(values: list[Any]) -> list[np.ndarray]:
    return [np.array(v.numpy() if hasattr(v, "numpy") else v) for v in values]


def describe(key: str, recipe: Recipe) -> str:
    paddle = require("paddle")
    model = live(key, recipe)
    kind = "Paddle Inference predictor (CPU)" if isinstance(model, InferenceModel) else "dygraph, eval, no_grad"
    return f"paddle {paddle.__version__} {kind}"


def run(key: str, recipe: Recipe, inputs: list[np.ndarray]) -> list[np.ndarray]:
    model = live(key, recipe)
    if isinstance(model, InferenceModel):
        return _numpy(model(*inputs))
    paddle = require("paddle")
    with paddle.no_grad():
        return _numpy(_flatten(model(*[paddle.to_tensor(x) for x in inputs])))


def capture(key: str, recipe: Recipe, inputs: list[np.ndarray], names: list[str] | None) -> dict[str, np.ndarray]:
    model = live(key, recipe)
    if isinstance(model, InferenceModel):
        raise OnnxmendError("A saved Paddle inference model has no sublayers to tap; use its Layer factory instead.")
    return capture_with_hooks(dict(model.named_sublayers()), names,
                              lambda layer, hook: layer.register_forward_post_hook(hook),
                              lambda output: next(iter(_numpy(_flatten(output)[:1])), None),
                              lambda: run(key, recipe, inputs), "The Paddle Layer has no sublayer named")


def timed(key: str, recipe: Recipe, inputs: list[np.ndarray]) -> Callable[[], object]:
    model = live(key, recipe)
    if isinstance(model, InferenceModel):
        return lambda: model(*inputs)
    paddle = require("paddle")
    tensors = [paddle.to_tensor(x) for x in inputs]

    def call() -> object:
        with paddle.no_grad():
            return model(*tensors)

    return call
