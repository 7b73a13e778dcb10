"""The numeric gate the pass manager is handed: does a rewritten model still compute the input's outputs?

:class:`NumericGate` runs the pipeline's input model once on seeded inputs (in the source's layout, adapted
to each model's recorded interface) and keeps its outputs as the reference; every rewrite is compared with
that one reference at a fixed tolerance, so the tolerance never grows with the number of rounds.
onnxruntime runs with its own optimisations off, so its fusions cannot hide a pass's mistakes.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import onnx

from onnxmend.core.errors import first_line
from onnxmend.core.interface import source_layout_specs
from onnxmend.runtime.compare import Comparator, Tolerance
from onnxmend.runtime.inputs import synthesize
from onnxmend.runtime.runners import onnx_runner

# Gate tolerance, relative to each output's scale: passes are exact or fold float constants.
GATE_ATOL = 1e-4
GATE_RTOL = 1e-3


class NumericGate:
    """The reference outputs of one model, and the check every rewrite of it must pass."""

    def __init__(self, model: onnx.ModelProto, feeds: Mapping[str, np.ndarray] | None = None, seed: int = 0) -> None:
        self.feeds = dict(feeds) if feeds is not None else synthesize(source_layout_specs(model), seed=seed)
        self.reference: dict[str, np.ndarray] | None = None
        self.unavailable = ""
        try:
            self.reference = run_cpu(model, self.feeds)
        except Exception as exc:  # the input graph itself may not run (e.g. ORT rejects a dilated SAME Conv)
            self.unavailable = (
                f"onnxruntime cannot run the input graph ({first_line(exc)}); passes were checked "
                "structurally but not compared numerically."
            )

    def check(self, model: onnx.ModelProto) -> str:
        """Empty string when ``model`` still computes the reference; otherwise why not."""
        try:
            outputs = run_cpu(model, self.feeds)
        except Exception as exc:  # any ORT failure on the rewrite rejects it
            return f"onnxruntime cannot run the rewritten graph: {first_line(exc)}"
        try:
            comparison = Comparator(Tolerance(GATE_ATOL, GATE_RTOL)).compare(self.reference or {}, outputs)
        except ValueError as exc:  # the outputs can no longer be paired with the reference's
            return f"the rewritten graph's outputs cannot be compared: {exc}"
        bad = [o for o in comparison.outputs if o.verdict == "mismatch"]
        if bad:
            worst = max(bad, key=lambda o: o.max_abs_scaled)
            return f"output {worst.name} changed (max abs diff {worst.max_abs:.3g}, cosine {worst.cosine:.6f})"
        return ""


def run_cpu(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``model`` on onnxruntime's CPU provider with optimisations off, fed and read in the source layout."""
    return onnx_runner(model, provider="cpu", opt_level="disable").run(feeds)
