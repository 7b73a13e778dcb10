"""The one thing every model runner does: numpy inputs by name in, numpy outputs by name out.

A :class:`Runner` is loaded once and then run many times. ``run`` returns the outputs; ``capture``
returns named intermediate activations as well (module paths for torch, layer names for Keras, tensor
names for ONNX); ``timed_call`` prepares the inputs in the framework's own tensors once and returns a
zero-argument call that runs the model natively, which is what a benchmark times.

Runners are in the model's own layout. :class:`~onnxmend.runtime.runners.interface.SourceLayout` wraps an
ONNX runner whose interface passes changed, so that it takes and returns the source's layout.
"""

from __future__ import annotations

from typing import Callable, Mapping, Protocol, Sequence

import numpy as np

from onnxmend.core.errors import OnnxmendError
from onnxmend.core.specs import TensorSpec

Arrays = Mapping[str, np.ndarray]


class Runner(Protocol):
    framework: str  # "onnxruntime", "torch", "keras", "tensorflow"

    @property
    def label(self) -> str:
        """How the model is run, for reports: "onnxruntime CPUExecutionProvider", "torch eager", ..."""

    @property
    def inputs(self) -> list[TensorSpec]:
        """What ``run`` takes: names, shapes (dynamic dims as None or names) and dtypes."""

    def run(self, feeds: Arrays) -> dict[str, np.ndarray]:
        """The model's outputs on ``feeds``, keyed by output name."""

    def capture(self, feeds: Arrays, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        """Intermediate activations keyed by name (all capturable ones when ``names`` is None)."""

    def timed_call(self, feeds: Arrays) -> Callable[[], object]:
        """A zero-argument call running the model on ``feeds`` prepared once, for timing."""


def check_feeds(runner_inputs: Sequence[TensorSpec], feeds: Arrays) -> None:
    """One sentence when a model input has no value in ``feeds``."""
    missing = [s.name for s in runner_inputs if s.name not in feeds]
    if missing:
        raise OnnxmendError(f"No value given for model input(s) {', '.join(missing)}.")
