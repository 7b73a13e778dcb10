"""Where a sweep's models run: one after another in this process (``serial``), or as Ray tasks (``ray``).

Both engines run the same function per model (:func:`~onnxmend.flows.sweep_job.run_model`, which gives
every model its own worker process) and yield each model's rows as soon as they are done, so the two
engines produce the same rows and the caller can write results after every model.

Ray is an optional extra (``pip install 'onnxmend[ray]'``). Without an address a private local Ray
instance is started for the sweep and shut down after it; with one (``ray://host:10001``, ``host:6379``,
``auto``) the sweep joins that cluster, each model's task reserving ``cpus_per_model`` CPUs, and the
artifacts of a model are written on the node that ran it. A Ray process that was already initialised by
the caller is used as it is and left running. Ray sets ``OMP_NUM_THREADS`` to a task's CPUs; each
model's worker gets the sweep's own setting instead (:func:`onnxmend.flows.sweep.reproducible_env`), so
torch computes the same reference in both engines; set ``OMP_NUM_THREADS=1`` for the sweep to keep
parallel tasks from competing for cores.
"""

from __future__ import annotations

import logging
import socket
import time
from dataclasses import dataclass
from typing import Iterator, Sequence

from onnxmend.core.deps import require
from onnxmend.core.errors import OnnxmendError, first_line
from onnxmend.flows.sweep_job import EXIT_INTERNAL, run_model
from onnxmend.flows.sweep_result import SweepJob, SweepOptions, SweepRow, failed_row

log = logging.getLogger(__name__)
ModelJobs = Sequence[SweepJob]  # the jobs of one model
# A local instance needs no more shared memory than the rows it carries back.
LOCAL_OBJECT_STORE_BYTES = 256 * 2**20


@dataclass
class EngineRun:
    """An engine's rows, model by model, and how long it took to start."""

    batches: Iterator[list[SweepRow]]
    startup_seconds: float = 0.0
    note: str = ""


def start_engine(groups: Sequence[ModelJobs], options: SweepOptions) -> EngineRun:
    if options.engine == "serial":
        return EngineRun(run_model(jobs, options) for jobs in groups)
    if options.engine == "ray":
        return _start_ray(groups, options)
    raise OnnxmendError(f"Unknown engine {options.engine!r}; use serial or ray.")


def _start_ray(groups: Sequence[ModelJobs], options: SweepOptions) -> EngineRun:
    ray = require("ray")
    started = time.perf_counter()
    owned = not ray.is_initialized()
    if not owned:
        return EngineRun(_ray_batches(ray, groups, options, owned), 0.0, "Ray was already initialised in this process")
    _init_ray(ray, options.address)
    seconds = time.perf_counter() - started
    where = f"joined Ray at {options.address}" if options.address else "a local Ray instance started"
    return EngineRun(_ray_batches(ray, groups, options, owned), seconds, f"{where} in {seconds:.1f} s")


def _init_ray(ray: object, address: str | None) -> None:
    kwargs: dict[str, object] = dict(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    if address is None:
        # "local": a private instance, never a cluster some other process on this machine started.
        kwargs.update(address="local", object_store_memory=LOCAL_OBJECT_STORE_BYTES)
    else:
        check_reachable(address)
        kwargs["address"] = address
    try:
        ray.init(**kwargs)  # type: ignore[attr-defined]
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        target = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise OnnxmendError(f"Could not start or join {target} ({first_line(exc)}).") from exc


def check_reachable(address: str, timeout_s: float = 5.0) -> None:
    """A ``host:port`` or ``ray://host:port`` that nothing answers at is one sentence now; Ray itself would
    retry for minutes."""
    host, sep, port = address.removeprefix("ray://").rpartition(":")
    if not sep or not port.isdigit():
        return  # "auto", "local" or a form Ray resolves itself
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s).close()
    except OSError as exc:
        raise OnnxmendError(f"Nothing answers at the Ray address {address} ({first_line(exc)}); start the cluster "
                            "(`ray start --head`) or check --address.") from exc


def _ray_batches(ray: object, groups: Sequence[ModelJobs], options: SweepOptions,
                 owned: bool) -> Iterator[list[SweepRow]]:
    """Submit every model as a task, then yield rows in the order the tasks finish."""
    try:
        task = ray.remote(num_cpus=options.cpus_per_model, max_retries=0)(run_model)  # type: ignore[attr-defined]
        pending = {task.remote(list(jobs), options): jobs for jobs in groups}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)  # type: ignore[attr-defined]
            jobs = pending.pop(done[0])
            try:
                yield ray.get(done[0])  # type: ignore[attr-defined]
            except Exception as exc:  # Ray raises its own task/worker error types
                yield [failed_row(job, EXIT_INTERNAL, f"the Ray task failed: {first_line(exc)}") for job in jobs]
    finally:
        if owned:
            ray.shutdown()  # type: ignore[attr-defined]
