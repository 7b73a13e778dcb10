"""A PyTorch ``nn.Module`` as a :class:`~onnxmend.runtime.runners.base.Runner`: eager, ``inference_mode``.

``capture`` registers forward hooks keyed by module path (``features.3.conv``) and keeps each module's
first tensor output; with ``names`` only those modules are hooked, so a probe costs one forward pass
however deep the model is.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from onnxmend.core.deps import require
from onnxmend.core.errors import OnnxmendError
from onnxmend.core.specs import TensorSpec
from onnxmend.exporters.base import SourceModel
from onnxmend.exporters.pytorch.export import flatten_outputs
from onnxmend.runtime.runners.base import Arrays, check_feeds


class TorchRunner:
    framework = "torch"
    label = "torch eager (inference_mode)"

    def __init__(self, source: SourceModel) -> None:
        self.source = source
        self.module = source.model

    @property
    def inputs(self) -> list[TensorSpec]:
        return list(self.source.inputs)

    def _tensors(self, feeds: Arrays) -> list[Any]:
        torch = require("torch")
        check_feeds(self.source.inputs, feeds)
        return [torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in self.source.input_names]

    def run(self, feeds: Arrays) -> dict[str, np.ndarray]:
        torch = require("torch")
        tensors = self._tensors(feeds)
        with torch.inference_mode():
            result = self.module(*tensors)
        return {n: t.detach().cpu().numpy() for n, t in zip(self.source.output_names, flatten_outputs(result))}

    def capture(self, feeds: Arrays, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        torch = require("torch")
        modules = dict(self.module.named_modules())
        wanted = list(names) if names is not None else [n for n in modules if n]
        unknown = [n for n in wanted if n not in modules]
        if unknown:
            raise OnnxmendError(f"The torch model has no module named {unknown[0]!r}.")
        captured: dict[str, np.ndarray] = {}
        handles = [modules[n].register_forward_hook(_keeper(n, captured)) for n in wanted]
        try:
            tensors = self._tensors(feeds)
            with torch.inference_mode():
                self.module(*tensors)
        finally:
            for handle in handles:
                handle.remove()
        return captured

    def timed_call(self, feeds: Arrays) -> Callable[[], object]:
        torch = require("torch")
        tensors = self._tensors(feeds)

        def call() -> object:
            with torch.inference_mode():
                return self.module(*tensors)

        return call


def _keeper(name: str, into: dict[str, np.ndarray]) -> Callable[..., None]:
    def hook(_module: Any, _inputs: Any, output: Any) -> None:
        tensors = flatten_outputs(output)
        if tensors:  # a copy: an in-place activation after this module would change a shared buffer
            into[name] = tensors[0].detach().cpu().numpy().copy()

    return hook
