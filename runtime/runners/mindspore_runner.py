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
from onnxmend.core.errors import OnnxmendError
from onnxmend.exporters.remote import Recipe, live


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
    cells = {n: c for n, c in cell.cells_and_names() if n}
    wanted = list(names) if names is not None else list(cells)
    unknown = [n for n in wanted if n not in cells]
    if unknown:
        raise OnnxmendError(f"The MindSpore Cell has no sub-cell named {unknown[0]!r}.")
    captured: dict[str, np.ndarray] = {}

    def keeper(name: str) -> Callable[..., None]:
        def hook(_cell: Any, _args: Any, output: Any) -> None:
            tensors = _flatten(output)
            if tensors:
                captured[name] = np.array(tensors[0].asnumpy())
        return hook

    handles = [cells[n].register_forward_hook(keeper(n)) for n in wanted]
    try:
        run(key, recipe, inputs)
    finally:
        for handle in handles:
            handle.remove()
    return captured


def timed(key: str, recipe: Recipe, inputs: list[np.ndarray]) -> Callable[[], object]:
    ms = require("mindspore")
    cell = live(key, recipe)
    tensors = [ms.Tensor(x) for x in inputs]
    return lambda: cell(*tensors)
