"""One model of a sweep: its jobs (presets × providers) run one by one in the model's own worker process.

:func:`run_model` is what an engine runs (in the sweep's process when serial, in a Ray task otherwise); it
starts a :class:`~onnxmend.core.worker.Worker` and calls :func:`job_row` in it for every job, so a model
that crashes natively, hangs past the timeout or exhausts memory costs its own rows only: the row says
why and the next job gets a fresh process. :func:`job_row` is ``convert`` (export, fix with the preset,
validate against the source) followed by a short ``bench`` of the fixed graph, reduced to plain values.
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

from onnxmend.core.errors import OnnxmendError, first_line
from onnxmend.core.worker import RemoteFailure, Worker, WorkerFailure
from onnxmend.exporters.options import parse_input_arg
from onnxmend.flows.convert import ConvertOptions, ConvertResult, convert
from onnxmend.flows.sweep_result import SweepJob, SweepOptions, SweepRow, failed_row

log = logging.getLogger(__name__)
JOB_TARGET = "onnxmend.flows.sweep_job:job_row"
EXIT_BAD_INPUT, EXIT_INTERNAL = 2, 4
_SHORT_PROVIDER = {"CPUExecutionProvider": "cpu", "CUDAExecutionProvider": "cuda"}


def run_model(jobs: Sequence[SweepJob], options: SweepOptions) -> list[SweepRow]:
    """Every job of one model, in one worker process (restarted after a job that kills it)."""
    rows = []
    with Worker(memory_bytes=options.memory_bytes, env=dict(options.worker_env)) as worker:
        for job in jobs:
            started = time.perf_counter()
            row = _run_job(worker, job, options)
            rows.append(replace(row, seconds=round(time.perf_counter() - started, 3)))
    return rows


def _run_job(worker: Worker, job: SweepJob, options: SweepOptions) -> SweepRow:
    if job.problem:
        return failed_row(job, EXIT_BAD_INPUT, job.problem)
    doing = f"converting {job.source} with preset {job.preset} on provider {job.provider}"
    try:
        return worker.call(JOB_TARGET, actor="the model's worker process", doing=doing, timeout_s=options.timeout_s,
                           job=job, options=options)
    except WorkerFailure as exc:  # a hang, a native crash, memory: an OnnxmendError too, so caught first
        return failed_row(job, EXIT_INTERNAL, str(exc))
    except OnnxmendError as exc:
        return failed_row(job, EXIT_BAD_INPUT, str(exc))
    except RemoteFailure as exc:
        return failed_row(job, EXIT_INTERNAL, f"internal error: {exc}")


def job_row(job: SweepJob, options: SweepOptions) -> SweepRow:
    """Inside the worker: convert the job's source with its preset and provider, bench the fixed graph."""
    export = options.export
    if job.inputs:
        export = replace(export, inputs=tuple(parse_input_arg(text) for text in job.inputs))
    convert_options = ConvertOptions(
        export=export, preset=job.preset, seed=options.seed, provider=job.provider,  # type: ignore[arg-type]
        threads=options.threads, atol=options.atol, rtol=options.rtol, force=options.force,
    )
    result = convert(job.target or job.source, job.out_dir, convert_options)
    ran_on = _SHORT_PROVIDER.get(result.validation.provider, result.validation.provider)
    latency, bench_problem = fixed_latency(Path(job.out_dir) / "model.onnx", ran_on, options)
    comparison = result.validation.comparison
    worst = max(comparison.outputs, key=lambda o: o.max_abs_scaled, default=None)
    return SweepRow(
        job.index, job.source, job.preset, job.provider, result.validation.verdict, result.exit_code,
        row_reason(result, bench_problem), ran_on, worst.max_abs if worst else None,
        worst.max_abs_scaled if worst else None, result.raw_validation.verdict,
        sum(result.before.ops.values()), sum(result.after.ops.values()), dict(result.before.ops),
        dict(result.after.ops), latency, out_dir=job.out_dir,
    )


def fixed_latency(model: Path, provider: str, options: SweepOptions) -> tuple[float | None, str | None]:
    """p50 in ms of a short interleaved bench of the fixed graph, or why there is none."""
    if options.bench_seconds <= 0:
        return None, None
    from onnxmend.flows.bench import bench
    from onnxmend.runtime.bench.options import BenchOptions

    bench_options = BenchOptions(providers=(provider,), warmup=3, seconds=options.bench_seconds, rounds=3,
                                 threads=options.threads, seed=options.seed, memory=False)
    try:
        found = bench([model], options=bench_options).results
    except OnnxmendError as exc:
        return None, f"bench: {first_line(exc)}"
    stats = found[0].stats if found else None
    if stats is None:
        return None, f"bench: {found[0].reason if found else 'nothing measured'}"
    return round(stats.p50_ms, 4), None


def row_reason(result: ConvertResult, bench_problem: str | None = None) -> str:
    """Why the row has its verdict: the failing outputs and whether the raw export fails too; passes the
    gate rolled back; a bench that could not run."""
    validation, parts = result.validation, []
    parts += [text for text in (validation.unverified, validation.failure) if text]
    if validation.verdict != "pass":
        parts += validation.comparison.failures[:2]
        raw = result.raw_validation
        parts.append("the raw export fails too" if raw.verdict != "pass" else
                     f"the raw export passes (max abs/scale {raw.comparison.worst_max_abs_scaled:.2g})")
    rejected = [r.name for r in result.pipeline.records if r.status == "rejected"]
    if rejected:
        parts.append(f"the gate rolled back {', '.join(dict.fromkeys(rejected))}")
    if bench_problem:
        parts.append(bench_problem)
    return "; ".join(parts)
