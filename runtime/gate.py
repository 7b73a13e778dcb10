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

``fix`` and ``convert`` build the gate with ``background=True``: the references are taken in a thread (the
worker builds the input graph's session and runs it while the pipeline's first round runs in this process)
and whatever asks for them first waits; at 100,000 nodes they take about 9 s, and a gated fix went from 49 to 43 s.

The one exception to the dtype's tolerance is the rounding a deep graph cannot avoid: folding 53
BatchNorms into ResNet50's Convs moves its float32 output by ~1.6e-5 of its scale, exactly as
onnxruntime's own Conv+BatchNorm fusion does. So when a rewrite first differs by more than the
dtype allows, the gate runs the input model once with onnxruntime's optimisations on and measures that
difference per output (its *noise floor*; measured once, and only then: building an optimised session of
a 100k-node graph takes minutes); an output's tolerance is the dtype's or ``NOISE_FACTOR`` times its floor,
whichever is larger, and never more than ``MAX_NOISE_TOLERANCE`` — on a small graph the floor is ~1e-7
and the 5e-5 nudge is still caught.
"""

from __future__ import annotations

import threading
from typing import Mapping, Sequence

import numpy as np
import onnx

from onnxmend.core.errors import first_line
from onnxmend.core.interface import source_layout_specs
from onnxmend.core.large import is_heavy
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
NOISE_FACTOR = 4.0
MAX_NOISE_TOLERANCE = 1e-4


class NumericGate:
    """The reference outputs of one model at the sizes it runs, and the check every rewrite must pass."""

    def __init__(self, model: onnx.ModelProto, feeds: Mapping[str, np.ndarray] | None = None, seed: int = 0,
                 timeout_s: float = DEFAULT_TIMEOUT_S, worker: Worker | None = None,
                 samples: Sequence[Mapping[str, np.ndarray]] | None = None, background: bool = False) -> None:
        """``background``: take the references in a thread (the worker computes, this process goes on with the
        pipeline); :attr:`unavailable`, :attr:`plan` and :meth:`check` wait for them and raise what taking
        them raised. A heavy model's references are always taken at once (two copies of its weights in
        flight at the same time would cost what the memory floor saves)."""
        self.worker = worker or shared_worker()
        self._owns_worker = worker is not None
        self.timeout_s = timeout_s
        self._unavailable = ""
        self._plan = SizePlan()
        self.noise: dict[str, float] | None = None  # measured on the first numeric difference
        self._input = model
        self._failure: BaseException | None = None
        self._thread: threading.Thread | None = None
        if background and not is_heavy(model):
            self._thread = threading.Thread(target=self._references_in_thread, args=(feeds, seed, samples),
                                            name="onnxmend-gate-references", daemon=True)
            self._thread.start()
        else:
            self._take_references(feeds, seed, samples)

    @property
    def pending(self) -> bool:
        """True while the references are still being taken in the background."""
        return self._thread is not None and self._thread.is_alive()

    @property
    def unavailable(self) -> str:
        """Why the gate cannot compare anything (empty when it can)."""
        self._ready()
        return self._unavailable

    @property
    def plan(self) -> SizePlan:
        """The input sets every rewrite is checked on, with the input model's outputs on each."""
        self._ready()
        return self._plan

    def _take_references(self, feeds: Mapping[str, np.ndarray] | None, seed: int,
                         samples: Sequence[Mapping[str, np.ndarray]] | None) -> None:
        model = self._input
        try:
            reference = self._runner(model, "the input graph")
        except Exception as exc:  # ORT refuses to load it, or its loader crashed in the worker
            self._unavailable = f"onnxruntime cannot load the input graph ({first_line(exc)})"
            return
        specs = source_layout_specs(model)
        try:
            if samples:
                self._plan = plan_samples(specs, reference.run, samples, "The input graph", seed, more_sizes=True)
            else:
                self._plan = plan_sizes(specs, reference.run, seed, feeds)
        finally:
            reference.runner.close()  # the references are kept; the session (and its weights) need not be
        if not self._plan.runnable:
            self._unavailable = self._plan.unavailable("the input graph")

    def _references_in_thread(self, *args: object) -> None:
        try:
            self._take_references(*args)  # type: ignore[arg-type]
        except BaseException as exc:  # noqa: BLE001 - raised again in the thread that asks for the references
            self._failure = exc

    def _ready(self) -> None:
        """Wait for references taken in the background; raise again what taking them raised."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._failure is not None:
            raise self._failure

    def _noise_floor(self, model: onnx.ModelProto) -> dict[str, float]:
        """Per float output: how far onnxruntime's own optimisations move it, relative to its scale, at the
        sizes of the plan (0 where the optimised run fails: then the dtype's tolerance alone applies)."""
        floor: dict[str, float] = {}
        try:
            optimised = SourceLayout(IsolatedOnnxRunner(model, "the input graph (optimised)", self.worker,
                                                        opt_level="all", timeout_s=self.timeout_s), model)
        except Exception:  # noqa: BLE001 - an optimiser that refuses the graph only leaves the floor at 0
            return floor
        try:
            for feed_set in self.plan.sets:
                outputs = optimised.run(feed_set.feeds)
                for name, ref in feed_set.outputs.items():
                    got = outputs.get(name)
                    if got is not None and np.asarray(ref).dtype.kind == "f" and np.shape(got) == np.shape(ref):
                        floor[name] = max(floor.get(name, 0.0), _scaled_difference(np.asarray(ref), np.asarray(got)))
        except Exception:  # noqa: BLE001 - as above
            return {}
        finally:
            optimised.runner.close()
        return floor

    def tolerance(self, name: str, reference: np.ndarray) -> Tolerance:
        """The tolerance output ``name`` is checked at: its dtype's, widened to its noise floor (capped)."""
        base = tolerance_for(reference)
        if np.asarray(reference).dtype.kind != "f":
            return base  # integers, booleans (and bfloat16, which numpy stores as void) keep their own
        noise = min(NOISE_FACTOR * (self.noise or {}).get(name, 0.0), MAX_NOISE_TOLERANCE)
        return Tolerance(max(base.atol, noise), max(base.rtol, noise)) if noise > base.atol else base

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
        try:
            for feed_set in self.plan.sets:
                try:
                    outputs = candidate.run(feed_set.feeds)
                except Exception as exc:  # any ORT failure (or a crash in the worker) on the rewrite rejects it
                    return f"onnxruntime cannot run the rewritten graph at {feed_set.label}: {first_line(exc)}"
                reason = _difference(feed_set.outputs, outputs, feed_set.label, self.tolerance)
                if reason and self.noise is None and "max abs diff" in reason:  # a numeric difference: rounding?
                    self.noise = self._noise_floor(self._input)
                    reason = _difference(feed_set.outputs, outputs, feed_set.label, self.tolerance)
                if reason:
                    return reason
            return ""
        finally:
            candidate.runner.close()

    def close(self) -> None:
        """Wait for references still being taken, then stop a worker that was handed in (the shared one
        outlives the gate)."""
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._owns_worker:
            self.worker.close()

    def _runner(self, model: onnx.ModelProto, what: str) -> SourceLayout:
        """An isolated runner of ``model`` (``.runner.close()`` frees its session in the worker)."""
        return SourceLayout(IsolatedOnnxRunner(model, what, self.worker, timeout_s=self.timeout_s), model)


def tolerance_for(value: np.ndarray) -> Tolerance:
    """The gate's tolerance for an output of ``value``'s dtype (exact for integers and booleans)."""
    dtype = np.asarray(value).dtype
    if dtype.kind in "iub":
        return Tolerance(0.0, 0.0)
    tol = BFLOAT16_TOLERANCE if "bfloat16" in str(dtype) else DTYPE_TOLERANCE.get(dtype, 1e-5)
    return Tolerance(tol, tol)


def _scaled_difference(ref: np.ndarray, got: np.ndarray) -> float:
    """max |ref - got| over the finite values, relative to the output's scale (max |ref|, at least 1)."""
    r, g = ref.astype(np.float64), got.astype(np.float64)
    finite = np.isfinite(r) & np.isfinite(g)
    if not finite.any():
        return 0.0
    return float(np.abs(r[finite] - g[finite]).max() / max(1.0, float(np.abs(r[finite]).max())))


def _difference(reference: Mapping[str, np.ndarray], outputs: Mapping[str, np.ndarray], label: str,
                tolerance=lambda _name, ref: tolerance_for(ref)) -> str:
    if set(reference) != set(outputs):
        return f"the rewritten graph's outputs {sorted(outputs)} are not the input graph's {sorted(reference)}"
    for name, ref in reference.items():
        got = np.asarray(outputs[name])
        if np.shape(ref) != got.shape:
            return f"output {name} changed shape at {label} from {list(np.shape(ref))} to {list(got.shape)}"
        if np.asarray(ref).dtype.kind in "OSU" or got.dtype.kind in "OSU":  # strings: equal or not
            if not np.array_equal(ref, got):
                return f"output {name} changed at {label}"
            continue
        tol = tolerance(name, ref)
        o = Comparator(tol).compare_arrays(name, ref, outputs[name])
        if o.verdict == "mismatch":
            return (f"output {name} changed at {label} (max abs diff {o.max_abs:.3g}, "
                    f"{o.max_abs_scaled:.2g} of its scale, cosine {o.cosine:.6f}; allowed {tol.atol:.2g})")
        # A zero, constant or non-finite reference makes a parity verdict meaningless ("degenerate"), but
        # the gate compares a graph with itself: such an output must still come out the same.
        if o.verdict == "degenerate" and not _within(np.asarray(ref), got, tol):
            return f"output {name} changed at {label} (its reference {o.reason[len('the reference output '):]})"
        if np.asarray(ref).dtype != np.asarray(outputs[name]).dtype:
            return f"output {name} changed dtype from {np.asarray(ref).dtype} to {np.asarray(outputs[name]).dtype}"
    return ""


def _within(ref: np.ndarray, got: np.ndarray, tol: Tolerance) -> bool:
    """NaN where ``ref`` has NaN, its infinities, and the finite values within ``tol`` of its scale."""
    r, g = ref.astype(np.float64), got.astype(np.float64)
    nan, inf = np.isnan(r), np.isinf(r)
    if not np.array_equal(nan, np.isnan(g)) or not np.array_equal(r[inf], g[inf]):
        return False
    finite = ~(nan | inf)
    scale = max(1.0, float(np.abs(r[finite]).max()) if finite.any() else 1.0)
    return bool(np.all(np.abs(r[finite] - g[finite]) <= tol.atol * scale + tol.rtol * np.abs(r[finite])))
