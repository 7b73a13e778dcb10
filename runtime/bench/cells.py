"""The ``bench()`` API: fair, interleaved measurement of ONNX artifacts and the source.

Per (provider, batch) cell, every subject (an ONNX artifact, or the source framework) is measured so:

1. its session is created (not timed) and its first run is timed alone: the *cold* latency;
2. ``warmup`` runs, timed only to size the blocks of step 3;
3. ``rounds`` rounds; in each, every subject runs its block of runs in turn, the starting subject rotating
   from round to round (A…A B…B C…C | B…B C…C A…A | …), so drift of the machine (clock boost,
   neighbours) and order effects hit every subject alike. Blocks are sized so that each
   subject gets about the same time per round (``--seconds``), or hold ``--runs`` split evenly over rounds;
4. speedups against the baseline are taken round by round (median of the baseline's block over median of
   the subject's block) and reported with their p10–p90 spread.

Every subject is fed the same inputs in the source's layout: seeded ones, or the user's (``feeds``, the
first loaded batch), adapted to each artifact's interface; the outputs of the first cell are kept on the
result for ``--save-outputs``. Every run is timed with ``time.perf_counter_ns``; the clock is injectable for tests. The timing engine
lives in :mod:`onnxmend.runtime.bench.engine`, statistics and the report in :mod:`onnxmend.runtime.bench.results`,
the source framework in :mod:`onnxmend.runtime.bench.source`, machine facts and the memory probe in
:mod:`onnxmend.runtime.machine`.
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping, Sequence

import numpy as np
import onnx
import onnxruntime as ort

from onnxmend.core.errors import OnnxmendError, first_line
from onnxmend.core.fileio import load_model
from onnxmend.core.interface import adapt_feeds, restore_outputs, source_layout_specs
from onnxmend.core.specs import specs_from_model
from onnxmend.runtime.bench.agreement import record_agreement
from onnxmend.runtime.bench.engine import Clock, Samples, measure_interleaved, time_once
from onnxmend.runtime.bench.options import BenchOptions
from onnxmend.runtime.bench.results import ArtifactResult, BenchResult, round_speedups, summarize, summarize_ratio
from onnxmend.runtime.bench.source import COMPILED_LABEL, BenchSource, source_feeds, source_subjects
from onnxmend.runtime.inputs import synthesize
from onnxmend.runtime.machine import busy_note, load_average, machine_facts, probe_peak_rss
from onnxmend.runtime.runners import OnnxRunner
from onnxmend.runtime.session import cuda_available, cuda_unavailable_reason

log = logging.getLogger(__name__)

# -------------------------------------------------------------------------------------------- subjects


@dataclass
class Subject:
    """One thing to time in one cell: a prepared callable plus what the report says about it."""

    label: str
    call: Callable[[], object]
    notes: list[str] = field(default_factory=list)
    # One untimed run returning the outputs in the source's layout, for the agreement check.
    probe: Callable[[], dict[str, np.ndarray]] | None = None


# ------------------------------------------------------------------------------------------ orchestration


@dataclass(frozen=True)
class Artifact:
    label: str
    path: Path
    model: onnx.ModelProto
    fixed_batch: int | None  # None: the batch axis is dynamic


def bench(
    models: Sequence[str | os.PathLike[str]], source: BenchSource | None = None,
    options: BenchOptions = BenchOptions(), clock: Clock = time.perf_counter_ns,
    feeds: Mapping[str, np.ndarray] | None = None,
) -> BenchResult:
    """Benchmark ONNX ``models`` (and ``source``) over providers x batches; see the module docstring.

    ``feeds`` (source layout) replaces the seeded inputs; its batch is the only one measured."""
    started = time.perf_counter()
    load_before = load_average()
    options.validate()
    artifacts = load_artifacts(models)
    src = source
    labels = [a.label for a in artifacts] + (src.labels if src else [])
    baseline = resolve_baseline(options.baseline, labels)
    providers = options.providers or (("cpu", "cuda") if cuda_available() else ("cpu",))
    notes = [f"{a.label}: the model's batch is fixed at {a.fixed_batch}; it is measured only at that batch"
             for a in artifacts if a.fixed_batch is not None and set(options.batches) != {a.fixed_batch}]
    if options.compile and (src is None or COMPILED_LABEL not in src.labels):
        notes.append("--compile applies to PyTorch factory sources only; nothing was compiled")
    if src is not None and providers != ("cpu",):
        notes.append("the source framework runs on the CPU here, so it is timed in the CPU cells only")
    results: list[ArtifactResult] = []
    outputs: dict[str, dict[str, np.ndarray]] = {}
    batches = (_batch_of(feeds),) if feeds is not None else options.batches
    for provider in providers:
        for batch in batches:
            log.info("Benchmarking provider %s, batch %d.", provider, batch)
            results += bench_cell(artifacts, src, provider, batch, baseline, options, clock, feeds, outputs)
    settings = {**options.to_json(), "providers": list(providers)}
    machine = machine_facts()
    busy = busy_note(machine.usable_cores, load_before, machine.load_average)
    return BenchResult(machine.to_json(), settings, baseline, results, notes + ([busy] if busy else []),
                       time.perf_counter() - started, outputs=outputs)


def _batch_of(feeds: Mapping[str, np.ndarray]) -> int:
    firsts = [np.shape(v)[0] for v in feeds.values() if np.ndim(v)]
    return int(firsts[0]) if firsts else 1


def load_artifacts(models: Sequence[str | os.PathLike[str]]) -> list[Artifact]:
    paths = [Path(m) for m in models]
    stems = [p.stem for p in paths]
    artifacts = []
    for path, stem in zip(paths, stems):
        model = load_model(path)
        label = stem if stems.count(stem) == 1 else f"{path.parent.name}/{stem}"
        artifacts.append(Artifact(label, path, model, fixed_batch(model)))
    return artifacts


def fixed_batch(model: onnx.ModelProto) -> int | None:
    """The batch an input fixes on axis 0, or None when every input leaves axis 0 dynamic."""
    firsts = [s.shape[0] for s in specs_from_model(model) if s.shape]
    if not firsts:
        return 1  # only scalar inputs: there is no batch axis to vary
    fixed = [d for d in firsts if isinstance(d, int)]
    return fixed[0] if fixed else None


def resolve_baseline(choice: str | int, labels: Sequence[str]) -> str:
    if isinstance(choice, int) or str(choice).isdigit():
        index = int(choice)
        if index >= len(labels):
            raise OnnxmendError(f"--baseline {index} is out of range; there are {len(labels)} subjects (0-based).")
        return labels[index]
    if choice in labels:
        return str(choice)
    raise OnnxmendError(f"--baseline {choice!r} names no subject; use one of {', '.join(labels)} or an index.")


def artifact_feeds(artifact: Artifact, batch: int, seed: int,
                   reference: Mapping[str, np.ndarray] | None, loaded: bool = False) -> dict[str, np.ndarray]:
    """Seeded inputs in the source's layout (the source's own, or the loaded ones, when given), adapted to
    the artifact."""
    names = [s.name for s in specs_from_model(artifact.model)]
    if loaded and reference is not None and not set(names) <= set(reference):
        missing = ", ".join(n for n in names if n not in reference)
        raise OnnxmendError(f"the loaded inputs have no value for its input(s) {missing}")
    if reference is None or not set(names) <= set(reference):
        reference = synthesize(source_layout_specs(artifact.model), seed=seed, batch=batch)
    return adapt_feeds({n: reference[n] for n in names}, artifact.model)


def onnx_subject(artifact: Artifact, provider: str, feeds: Mapping[str, np.ndarray],
                 options: BenchOptions) -> Subject:
    """A session for ``artifact`` (creation not timed) and the call to time: plain ``run``, or on CUDA
    ``run_with_iobinding`` with inputs and outputs on the device, unless copies are to be included."""
    session = OnnxRunner(artifact.path, provider=provider, threads=options.threads,  # type: ignore[arg-type]
                         opt_level=options.opt_level, tf32=options.tf32).session  # type: ignore[arg-type]
    inner = session.inner
    bound = {n: feeds[n] for n in session.input_names}
    probe = lambda: restore_outputs(session.run(bound), artifact.model)  # noqa: E731
    notes = []
    if provider == "cuda" and not options.include_copies:
        binding = inner.io_binding()
        device_values = [ort.OrtValue.ortvalue_from_numpy(v, "cuda", 0) for v in bound.values()]
        for name, value in zip(bound, device_values):
            binding.bind_ortvalue_input(name, value)
        for name in session.output_names:
            binding.bind_output(name, "cuda", 0)
        notes.append(f"I/O bound on the device (copies not timed); TF32 {'on' if options.tf32 else 'off'}")
        return Subject(artifact.label, lambda: (device_values, inner.run_with_iobinding(binding)), notes, probe)
    if provider == "cuda":
        notes.append(f"host<->device copies timed; TF32 {'on' if options.tf32 else 'off'}")
    return Subject(artifact.label, lambda: inner.run(None, bound), notes, probe)


def bench_cell(artifacts: Sequence[Artifact], src: BenchSource | None, provider: str, batch: int,
               baseline: str, options: BenchOptions, clock: Clock, feeds: Mapping[str, np.ndarray] | None = None,
               outputs: dict[str, dict[str, np.ndarray]] | None = None) -> list[ArtifactResult]:
    """Prepare every subject for one (provider, batch), measure them interleaved, and fill their rows
    (and ``outputs``, when it is still empty, with each subject's outputs)."""
    reference = dict(feeds) if feeds is not None else source_feeds(src, batch, options.seed) if src else None
    rows, active, feeds_of, probes = [], [], {}, {}
    for artifact in artifacts:
        row = ArtifactResult(artifact.label, "onnx", str(artifact.path), provider, batch)
        rows.append(row)
        if provider == "cuda" and cuda_unavailable_reason():
            _skip(row, f"CUDA unavailable: {cuda_unavailable_reason()}")
            continue
        if artifact.fixed_batch is not None and artifact.fixed_batch != batch:
            _skip(row, f"the model's batch is fixed at {artifact.fixed_batch}")
            continue
        try:
            feeds_of[row.label] = artifact_feeds(artifact, batch, options.seed, reference, feeds is not None)
            subject = onnx_subject(artifact, provider, feeds_of[row.label], options)
        except OnnxmendError as exc:
            _skip(row, str(exc).rstrip("."))
            continue
        active.append((row, subject.call, subject.notes))
        probes[row.label] = subject.probe
    if src is not None and provider == "cpu":
        for subject in source_subjects(src, reference or {}, options.threads):
            row = ArtifactResult(subject.label, "source", src.source, provider, batch)
            rows.append(row)
            if subject.call is None:
                _skip(row, subject.reason or "not available")
            else:
                active.append((row, subject.call, subject.notes))
                probes[row.label] = subject.probe
    _measure(active, batch, baseline, options, clock)
    probed = record_agreement(rows, probes, baseline)
    if outputs is not None and not outputs:
        outputs.update(probed)
    if options.memory:
        _measure_memory(rows, artifacts, feeds_of, options)
    return rows


def _measure(active: list[tuple[ArtifactResult, Callable[[], object], list[str]]], batch: int,
             baseline: str, options: BenchOptions, clock: Clock) -> None:
    cold_ok = []
    for row, call, notes in active:
        row.notes += notes
        try:
            cold_ok.append((row, call, Samples(cold_ns=time_once(call, clock))))
        except Exception as exc:  # a runtime's own error types (ORT Fail, torch, TF) all end up here
            _skip(row, f"the first run failed: {first_line(exc, 200)}")
    if not cold_ok:
        return
    samples, notes = measure_interleaved([c for _, c, _ in cold_ok], options.warmup, options.runs,
                                         options.budget_s, options.rounds, clock, [s for _, _, s in cold_ok])
    by_label = {row.label: sample for (row, _, _), sample in zip(cold_ok, samples)}
    for (row, _, _), sample in zip(cold_ok, samples):
        row.stats = summarize(sample.timed_ns, batch, sample.cold_ns)
        row.round_p50_ms = [float(np.median(block)) / 1e6 for block in sample.rounds]
        row.notes += notes
        if baseline in by_label:
            row.speedup = summarize_ratio(baseline, round_speedups(by_label[baseline].rounds, sample.rounds))


def _measure_memory(rows: list[ArtifactResult], artifacts: Sequence[Artifact],
                    feeds_of: Mapping[str, Mapping[str, np.ndarray]], options: BenchOptions) -> None:
    paths = {a.label: a.path for a in artifacts}
    for row in rows:
        if row.status != "ok":
            continue
        if row.kind != "onnx":
            row.notes.append("memory not measured: the source runs in this process and ru_maxrss is process-wide")
            continue
        try:
            row.memory = probe_peak_rss(paths[row.label], feeds_of[row.label], row.provider,
                                        options.threads, options.opt_level, options.tf32)
        except (RuntimeError, OSError, subprocess.TimeoutExpired) as exc:
            row.notes.append(f"memory not measured: {exc}")


def _skip(row: ArtifactResult, reason: str) -> None:
    row.status, row.reason = "skipped", reason
    log.info("Skipping %s on %s batch %d: %s.", row.label, row.provider, row.batch, reason)
