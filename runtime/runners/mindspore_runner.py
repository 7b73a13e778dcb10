"""A MindSpore ``nn.Cell`` — the child side of :class:`~onnxmend.runtime.runners.remote_runner.RemoteRunner`,
run in the MindSpore worker.

The Cell runs in PyNative mode in inference mode (``set_train(False)``). ``capture`` registers forward
hooks on its sub-cells, keyed by their path (``features.0.conv``), and keeps each one's first tensor
output.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from onnxmend.core.deps import require
from onnxmend.exporters.remote import Recipe, live
from onnxmend.runtime.runners.hooks import capture_with_hooks


def _flatten(result: Any) -> list[Any]:
    if isinstance(result, (list, tuple)):
        return [t for v in result for t in _flatten(v)]
    return [result] if hasattr(result, "asnumpy") else []


def describe(key: str, recipe: Recipe) -> str:
    return f"mindspore {require('mindspore').__version__} PyNative (set_train(False))"


def run(key: str, recipe: Recipe, inputs: list[np.ndarray]) -> list[np.ndarray]:
    ms = require("mindspore")
    cell = live(key, recipe)
    return [np.array(t.asnumpy()) for t in _flatten(cell(*[ms.Tensor(x) for x in inputs]))]


def capture(key: str, recipe: Recipe, inputs: list[np.ndarray], names: list[str] | None) -> dict[str, np.ndarray]:
    cell = live(key, recipe)
    return capture_with_hooks({n: c for n, c in cell.cells_and_names() if n}, names,
                              lambda sub, hook: sub.register_forward_hook(hook),
                              lambda output: next((np.array(t.asnumpy()) for t in _flatten(output)), None),
                              lambda: run(key, recipe, inputs), "The MindSpore Cell has no sub-cell named")


def timed(key: str, recipe: Recipe, inputs: list[np.ndarray]) -> Callable[[], object]:
    ms = require("mindspore")
    cell = live(key, recipe)
    tensors = [ms.Tensor(x) for x in inputs]
    return lambda: cell(*tensors)
