"""The numeric gate the pass manager is handed: does a rewritten model still compute the input's outputs?

:class:`NumericGate` runs the pipeline's input model in a worker process (so a hang or a native crash of
onnxruntime is a sentence, not the end of onnxmend) at every input size the planner of
:mod:`onnxmend.runtime.sizes` finds it can run: the declared size, a second (odd) size for each dynamic
axis, batch 3 beside batch 1 — a rewrite that crops a dynamic axis or keeps only batch element 0 is exact
at one size and caught at the others. Every rewrite is compared with those references, taken once from
the input model, at a tolerance tied to the output dtype (float32: 1e-5 relative, against each output's
scale) that never grows with the number of rounds: a pass that nudges a weight by 5e-5 is rejected the
first time it runs. onnxruntime runs with its own optimisations off, so its fusions cannot hide a pass's
mistakes. When the input model runs at no size tried, ``unavailable`` says why and the flow reports the
rewrite as not verified. Loaded ``samples`` (``--load-inputs``, in the source's layout) come first, and
the second size and batch 3 are still checked beside them with synthesised inputs: a rewrite must hold at
every size, not only the user's. A loaded sample the input graph cannot run is one sentence.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import onnx

from onnxmend.core.errors import first_line
from onnxmend.core.interface import source_layout_specs
from onnxmend.core.worker import Worker
from onnxmend.runtime.compare import Comparator, Tolerance
from onnxmend.runtime.runners import SourceLayout
from onnxmend.runtime.runners.isolated import IsolatedOnnxRunner, shared_worker
from onnxmend.runtime.sizes import SizePlan, plan_samples, plan_sizes

# Tolerance per output dtype, relative to the output's scale (atol) and to each value (rtol): a few hundred
# ulps, room for the float rounding of folded constants, none for a changed weight.
DTYPE_TOLERANCE = {
    np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-5, np.dtype(np.float16): 2e-3,
}
BFLOAT16_TOLERANCE = 2e-2
DEFAULT_TIMEOUT_S = 120.0


class NumericGate:
    """The reference outputs of one model at the sizes it runs, and the check every rewrite must pass."""

    def __init__(self, model: onnx.ModelProto, feeds: Mapping[str, np.ndarray] | None = None, seed: int = 0,
                 timeout_s: float = DEFAULT_TIMEOUT_S, worker: Worker | None = None,
                 samples: Sequence[Mapping[str, np.ndarray]] | None = None) -> None:
        self.worker = worker or shared_worker()
        self._owns_worker = worker is not None
        self.timeout_s = timeout_s
        self.unavailable = ""
        self.plan = SizePlan()
        try:
            reference = self._runner(model, "the input graph")
        except Exception as exc:  # ORT refuses to load it, or its loader crashed in the worker
            self.unavailable = f"onnxruntime cannot load the input graph ({first_line(exc)})"
            return
        specs = source_layout_specs(model)
        if samples:
            self.plan = plan_samples(specs, reference.run, samples, "The input graph", seed, more_sizes=True)
        else:
            self.plan = plan_sizes(specs, reference.run, seed, feeds)
        if not self.plan.runnable:
            self.unavailable = self.plan.unavailable("the input graph")

    @property
    def sizes(self) -> list[str]:
        """The input sizes every rewrite is checked at."""
        return [s.label for s in self.plan.sets]

    def check(self, model: onnx.ModelProto) -> str:
        """Empty string when ``model`` still computes the references at every size; otherwise why not."""
        try:
            candidate = self._runner(model, "the rewritten graph")
        except Exception as exc:
            return f"onnxruntime cannot load the rewritten graph: {first_line(exc)}"
        for feed_set in self.plan.sets:
            try:
                outputs = candidate.run(feed_set.feeds)
            except Exception as exc:  # any ORT failure (or a crash in the worker) on the rewrite rejects it
                return f"onnxruntime cannot run the rewritten graph at {feed_set.label}: {first_line(exc)}"
            reason = _difference(feed_set.outputs, outputs, feed_set.label)
            if reason:
                return reason
        return ""

    def close(self) -> None:
        """Stop a worker that was handed in (the shared one outlives the gate)."""
        if self._owns_worker:
            self.worker.close()

    def _runner(self, model: onnx.ModelProto, what: str) -> SourceLayout:
        return SourceLayout(IsolatedOnnxRunner(model, what, self.worker, timeout_s=self.timeout_s), model)


def tolerance_for(value: np.ndarray) -> Tolerance:
    """The gate's tolerance for an output of ``value``'s dtype (exact for integers and booleans)."""
    dtype = np.asarray(value).dtype
    if dtype.kind in "iub":
        return Tolerance(0.0, 0.0)
    tol = BFLOAT16_TOLERANCE if "bfloat16" in str(dtype) else DTYPE_TOLERANCE.get(dtype, 1e-5)
    return Tolerance(tol, tol)


def _difference(reference: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray], label: str) -> str:
    if set(reference) != set(outputs):
        return f"the rewritten graph's outputs {sorted(outputs)} are not the input graph's {sorted(reference)}"
    for name, ref in reference.items():
        got = np.asarray(outputs[name])
        if np.shape(ref) != got.shape:
            return f"output {name} changed shape at {label} from {list(np.shape(ref))} to {list(got.shape)}"
        o = Comparator(tolerance_for(ref)).compare_arrays(name, ref, outputs[name])
        if o.verdict == "mismatch":
            return (f"output {name} changed at {label} (max abs diff {o.max_abs:.3g}, "
                    f"{o.max_abs_scaled:.2g} of its scale, cosine {o.cosine:.6f})")
        if np.asarray(ref).dtype != np.asarray(outputs[name]).dtype:
            return f"output {name} changed dtype from {np.asarray(ref).dtype} to {np.asarray(outputs[name]).dtype}"
    return ""
