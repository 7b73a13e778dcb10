"""The layout adapt/restore, done once: a runner for an ONNX model whose interface passes changed, fed and
read in the source's layout.

``io-layout`` turns an NHWC input into NCHW and records ``new = transpose(old, perm)`` in the model's
``onnxmend.interface`` metadata. :class:`SourceLayout` transposes every input on the way in and every output
on the way out, so validation, the pass gate, the int8 gate and bench all hand it source-layout arrays.
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import onnx

from onnxmend.core.interface import adapt_feeds, restore_outputs, source_layout_specs
from onnxmend.core.specs import TensorSpec
from onnxmend.runtime.runners.base import Arrays, Runner


class SourceLayout:
    """``runner`` (of ``model``) seen in the layout of the source the model was exported from."""

    def __init__(self, runner: Runner, model: onnx.ModelProto) -> None:
        self.runner, self.model = runner, model
        self.framework = runner.framework

    @property
    def label(self) -> str:
        return self.runner.label

    @property
    def inputs(self) -> list[TensorSpec]:
        return source_layout_specs(self.model)

    def run(self, feeds: Arrays) -> dict[str, np.ndarray]:
        return restore_outputs(self.runner.run(adapt_feeds(feeds, self.model)), self.model)

    def capture(self, feeds: Arrays, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        return self.runner.capture(adapt_feeds(feeds, self.model), names)

    def timed_call(self, feeds: Arrays) -> Callable[[], object]:
        return self.runner.timed_call(adapt_feeds(feeds, self.model))
