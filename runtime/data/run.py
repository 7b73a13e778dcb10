"""Outputs of an ONNX graph on samples, for ``--save-outputs`` where no comparison has computed them (fix).

The graph runs in onnxruntime's worker process (an untrusted graph may hang or crash it), with its own
optimisations off, fed source-layout samples adapted to its interface; outputs come back as the graph itself
returns them.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import onnx

from onnxmend.core.errors import OnnxmendError, first_line
from onnxmend.core.interface import adapt_feeds
from onnxmend.runtime.runners.isolated import IsolatedOnnxRunner, shared_worker


def run_onnx(model: onnx.ModelProto, samples: Sequence[Mapping[str, np.ndarray]], what: str) -> list[dict[str, np.ndarray]]:
    """``model``'s outputs on each sample, or one sentence naming the sample it could not run."""
    try:
        runner = IsolatedOnnxRunner(model, what, shared_worker())
    except Exception as exc:  # onnxruntime refuses the graph, or crashed loading it
        raise OnnxmendError(f"onnxruntime cannot load {what} to save its outputs ({first_line(exc)}).") from exc
    runs = []
    for index, feeds in enumerate(samples):
        try:
            runs.append(runner.run(adapt_feeds(feeds, model)))
        except Exception as exc:  # any ORT failure on this sample
            raise OnnxmendError(f"onnxruntime cannot run {what} on sample {index} ({first_line(exc)}).") from exc
    return runs
