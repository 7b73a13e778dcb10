"""Validation: run the source framework and onnxruntime on the same seeded inputs and compare.

The ONNX model may have had its interface changed by passes (an NHWC input turned NCHW); the metadata
says how, so inputs are synthesised in the source's layout and the ONNX runner adapts them
(:class:`~onnxmend.runtime.runners.interface.SourceLayout`) and restores its outputs before comparison.

onnxruntime runs the ONNX model in a worker process (an untrusted graph may hang or crash it), and so
does an ONNX source. When the source has dynamic axes, the sizes compared are found by trying
(:mod:`onnxmend.runtime.sizes`): a model that cannot run at 8 is compared where it runs, and at a second
size and batch 3 as well. A model onnxruntime cannot run where the source runs is a mismatch, with the
reason; a source that runs at no size tried leaves the model *unverified*, with the reason. With loaded
inputs (``--load-inputs``) the comparison runs on those samples only (up to
:data:`~onnxmend.runtime.data.COMPARE_CAP`), and ``inputs`` says which were used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Mapping

import onnx

from onnxmend.core.errors import OnnxmendError, first_line
from onnxmend.core.worker import Worker
from onnxmend.exporters.base import Export
from onnxmend.runtime.compare import DEFAULT_ATOL, DEFAULT_RTOL, Comparator, Comparison, QuantizationSteps, Tolerance
from onnxmend.runtime.data import COMPARE_CAP, InputsUsed, LoadedInputs, shapes_of, synthetic_inputs
from onnxmend.runtime.inputs import synthesize
from onnxmend.runtime.runners import Runner, SourceLayout, source_runner
from onnxmend.runtime.runners.isolated import IsolatedOnnxRunner, shared_worker
from onnxmend.runtime.runners.matching import for_source
from onnxmend.runtime.session import Provider
from onnxmend.runtime.sizes import FeedSet, SizePlan, plan_samples, plan_sizes


@dataclass
class Validation:
    comparison: Comparison
    provider: str
    provider_note: str | None
    seed: int
    batch: int
    source_seconds: float
    onnx_seconds: float
    failure: str = ""  # onnxruntime could not run the model where the source ran
    unverified: str = ""  # the source ran at no input size tried
    sizes: tuple[str, ...] = ()
    inputs: InputsUsed | None = None
    # Each feed set compared and the ONNX model's outputs on it (source layout), for --save-outputs.
    runs: list[tuple[FeedSet, dict]] = field(default_factory=list, repr=False)

    @property
    def verdict(self) -> str:
        if self.unverified:
            return "unverified"
        return "mismatch" if self.failure else self.comparison.verdict

    def to_json(self) -> dict[str, object]:
        return {
            **self.comparison.to_json(), "verdict": self.verdict, "failure": self.failure,
            "unverified": self.unverified, "sizes": list(self.sizes), "provider": self.provider,
            "provider_note": self.provider_note, "seed": self.seed, "batch": self.batch,
            "source_seconds": round(self.source_seconds, 4), "onnx_seconds": round(self.onnx_seconds, 4),
            "inputs": self.inputs.to_json() if self.inputs else None,
        }


def validate(
    model: onnx.ModelProto, export: Export, *, seed: int = 0, batch: int = 1,
    atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL, provider: Provider = "auto", threads: int = 0,
    loaded: LoadedInputs | None = None,
) -> Validation:
    """Compare ``model`` on onnxruntime with ``export``'s source model, run in its own framework, on seeded
    inputs (or the ``loaded`` ones, in the source's layout).

    ``atol``/``rtol`` judge float outputs; the integer outputs of a quantized source get one quantization step.
    """
    worker = shared_worker()
    reference = _reference_runner(export, worker)
    start = time.perf_counter()
    if loaded is not None:
        plan = plan_samples(export.inputs, reference.run, loaded.take(COMPARE_CAP), "The source model")
    else:
        plan = plan_sizes(export.inputs, reference.run, seed, synthesize(export.inputs, seed=seed, batch=batch))
    source_seconds = time.perf_counter() - start
    # Integer outputs of a quantized source are allowed one quantization step (Export.output_steps).
    steps = {name: QuantizationSteps(step) for name, step in export.output_steps.items()}
    criterion = Comparator(Tolerance(atol, rtol), reference=f"source ({export.framework})", per_output=steps)
    if not plan.runnable:
        return Validation(Comparison([]), "", None, seed, batch, source_seconds, 0.0,
                          unverified=plan.unavailable("the source model"))
    inputs = loaded.used(len(plan.sets)) if loaded is not None else \
        synthetic_inputs([seed], [shapes_of(s.feeds) for s in plan.sets])
    return _compare(model, plan, criterion, worker, provider, threads,
                    dict(seed=seed, batch=batch, source_seconds=source_seconds, inputs=inputs), export)


def _reference_runner(export: Export, worker: Worker) -> Runner:
    """The source in its own framework; an ONNX source on onnxruntime in the worker, like the model."""
    source = export.source_model
    if source is not None and source.kind == "onnx-bytes":
        original = onnx.load_from_string(source.model)
        return SourceLayout(IsolatedOnnxRunner(original, "the original ONNX file", worker), original)
    return source_runner(export)


def _compare(model: onnx.ModelProto, plan: SizePlan, criterion: Comparator, worker: Worker, provider: Provider,
             threads: int, facts: Mapping[str, object], export: Export) -> Validation:
    start = time.perf_counter()
    try:
        runner = IsolatedOnnxRunner(model, "the ONNX model", worker, provider=provider, threads=threads, opt_level="all")
    except Exception as exc:  # onnxruntime refuses the graph, or crashed loading it
        return _failed(f"onnxruntime cannot load the ONNX model ({first_line(exc)})", plan, facts)
    try:
        return _run_sets(runner, model, plan, criterion, facts, export, start)
    finally:
        runner.close()  # the session (and its weights) leaves the worker before the next model's comes


def _run_sets(runner: IsolatedOnnxRunner, model: onnx.ModelProto, plan: SizePlan, criterion: Comparator,
              facts: Mapping[str, object], export: Export, start: float) -> Validation:
    # a port of the source (a torch port of a Keras model): inputs by name or position, layouts adapted
    candidate = for_source(SourceLayout(runner, model), model, export)
    _check_interfaces(candidate.inputs, plan.sets[0].feeds)
    comparisons, runs = [], []
    for feed_set in plan.sets:
        try:
            actual = candidate.run(feed_set.feeds)
        except Exception as exc:  # the source ran at this size and the ONNX model does not
            return _failed(f"onnxruntime cannot run the ONNX model at {feed_set.label} ({first_line(exc)})", plan, facts,
                           runner.provider, runner.fallback_reason)
        comparisons.append(criterion.compare(feed_set.outputs, actual))
        runs.append((feed_set, actual))
    return Validation(_worst(comparisons), runner.provider, runner.fallback_reason, onnx_seconds=time.perf_counter() - start,
                      sizes=tuple(s.label for s in plan.sets), runs=runs, **facts)  # type: ignore[arg-type]


def _check_interfaces(inputs: list, feeds: Mapping[str, object]) -> None:
    """One sentence when the ONNX model takes inputs the source does not give."""
    missing = [s.name for s in inputs if s.name not in feeds]
    if missing:
        raise OnnxmendError(f"The ONNX model's inputs ({', '.join(s.name for s in inputs)}) do not match the "
                            f"source's ({', '.join(feeds)}); validate a model against the source it was exported from.")


def _failed(reason: str, plan: SizePlan, facts: Mapping[str, object], provider: str = "",
            note: str | None = None) -> Validation:
    return Validation(Comparison([]), provider, note, onnx_seconds=0.0, failure=reason,
                      sizes=tuple(s.label for s in plan.sets), **facts)  # type: ignore[arg-type]


def _worst(comparisons: list[Comparison]) -> Comparison:
    """The comparison at the size that fared worst: a mismatch first, else the largest scaled error."""
    order = {"mismatch": 0, "degenerate": 1, "pass": 2}
    return min(comparisons, key=lambda c: (order[c.verdict], -c.worst_max_abs_scaled))
