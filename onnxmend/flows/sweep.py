"""``sweep``: convert, validate and time many models (× presets × providers) into one table.

Sources come one per line from a list file (``SOURCE [--input NAME:SHAPE ...]``; blank lines and ``#``
comments are skipped) and/or from the built-in zoo (:func:`zoo_sources`). Every model runs in its own
worker process (:mod:`onnxmend.flows.sweep_job`), serially or on Ray (:mod:`onnxmend.flows.sweep_engine`).
After every model ``DIR/sweep.jsonl`` (one row per line) and ``DIR/sweep.md`` are rewritten atomically, so
an interrupted sweep leaves every finished row on disk; each job's artifacts are in
``DIR/models/NNN-NAME/PRESET-PROVIDER/``. A model that fails (bad line, bad source, an export that raises,
a crash, a hang) gets a row that says why, and the sweep goes on; the result's exit code is 0 only when
every row passed.
"""

from __future__ import annotations

import fnmatch
import os
import re
import shlex
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

from onnxmend.core.errors import OnnxmendError, first_line
from onnxmend.core.outputs import claim_dir
from onnxmend.exporters.options import parse_input_arg
from onnxmend.flows.sweep_engine import start_engine
from onnxmend.flows.sweep_result import SweepJob, SweepOptions, SweepResult, SweepRow, write_results
from onnxmend.passes.infra.presets import PRESETS
from onnxmend.runtime.bench.options import PROVIDERS

__all__ = ["SweepOptions", "SweepResult", "SweepRow", "read_sources", "sweep", "zoo_sources"]

RESULT_FILES = ("sweep.jsonl", "sweep.md")
OnRows = Callable[[list[SweepRow], int], None]  # the rows of one model, and the number of rows expected


@dataclass(frozen=True)
class SourceLine:
    """One model to sweep: its source, the ``--input`` values its line gave, or what is wrong with the line."""

    source: str
    inputs: tuple[str, ...] = ()
    problem: str | None = None


def read_sources(path: str | Path) -> list[SourceLine]:
    """The models of a list file; a malformed line becomes a SourceLine with its problem, not an error."""
    path = Path(path)
    if not path.is_file():
        raise OnnxmendError(f"{path} is not a file; give a list of sources, one per line.")
    lines = []
    for number, text in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if text.strip() and not text.strip().startswith("#"):
            lines.append(parse_line(text, f"{path.name}:{number}"))
    return lines


def parse_line(text: str, where: str) -> SourceLine:
    """``SOURCE [--input NAME:SHAPE[:DTYPE] ...]`` (shell quoting, a trailing ``#`` comment allowed)."""
    try:
        tokens = shlex.split(text, comments=True)
    except ValueError as exc:
        return SourceLine(text.strip(), problem=f"{where}: {first_line(exc)}")
    source, rest, inputs = tokens[0], tokens[1:], []
    while rest:
        token = rest.pop(0)
        value = token.split("=", 1)[1] if token.startswith("--input=") else rest.pop(0) if token == "--input" and rest else None
        if value is None:
            return SourceLine(source, problem=f"{where}: unexpected {token!r}; a line is SOURCE [--input NAME:SHAPE ...]")
        try:
            parse_input_arg(value)
        except OnnxmendError as exc:
            return SourceLine(source, problem=f"{where}: {exc}")
        inputs.append(value)
    return SourceLine(source, tuple(inputs))


def zoo_sources(pattern: str = "") -> list[SourceLine]:
    """Zoo entries whose name matches ``pattern``: comma-separated names, globs (``tf-same-*``) or substrings
    (``torch``, ``gap,depthwise``); a zoo name matches only itself; empty: the whole zoo, in zoo order."""
    from onnxmend.models import ZOO

    globs = [p.strip() for p in pattern.split(",") if p.strip()]
    globs = [g if g in ZOO or any(c in g for c in "*?[") else f"*{g}*" for g in globs] or ["*"]
    names = [name for name in ZOO if any(fnmatch.fnmatchcase(name, g) for g in globs)]
    if not names:
        raise OnnxmendError(f"No zoo entry matches {pattern!r}; `onnxmend zoo` lists them.")
    return [SourceLine(f"zoo:{name}") for name in names]


def sweep(sources: Sequence[SourceLine | str], out_dir: str | Path, options: SweepOptions = SweepOptions(),
          on_rows: OnRows | None = None) -> SweepResult:
    """Run every source × preset × provider, writing results after each model; see the module docstring."""
    _check(options)
    if not options.worker_env:
        options = replace(options, worker_env=reproducible_env())
    lines = [s if isinstance(s, SourceLine) else SourceLine(s) for s in sources]
    if not lines:
        raise OnnxmendError("The sweep names no model; give a list file with one source per line, or --zoo.")
    out_dir = Path(out_dir).resolve()
    claim_dir(out_dir, RESULT_FILES, options.force)
    groups = plan_jobs(lines, out_dir, options)
    total = sum(len(jobs) for jobs in groups)
    started = time.perf_counter()
    engine = start_engine(groups, options)
    result = SweepResult(options, [], out_dir, engine_seconds=engine.startup_seconds,
                         notes=[engine.note] if engine.note else [])
    write_results(result, total)
    for rows in engine.batches:
        result.rows.extend(rows)
        result.seconds = time.perf_counter() - started
        write_results(result, total)
        if on_rows:
            on_rows(rows, total)
    result.rows.sort(key=lambda r: r.index)
    return result


def reproducible_env() -> tuple[tuple[str, str | None], ...]:
    """What every model's worker gets, whichever engine runs it, so that two sweeps give the same rows.

    tf2onnx's optimiser walks sets, so a Keras model's raw export depends on the hash seed (zoo:layernorm-
    last-keras: 16 or 17 nodes): the workers get this process's PYTHONHASHSEED, 0 when it has none. Ray
    sets OMP_NUM_THREADS to a task's CPUs, and torch's reductions then round differently: the workers get
    this process's setting (unset when it has none).
    """
    return (("PYTHONHASHSEED", os.environ.get("PYTHONHASHSEED", "0")),
            ("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS")))


def plan_jobs(lines: Sequence[SourceLine], out_dir: Path, options: SweepOptions) -> list[list[SweepJob]]:
    """One group of jobs per model (presets × providers), numbered in table order."""
    groups, index = [], 0
    for number, line in enumerate(lines):
        folder = out_dir / "models" / f"{number:03d}-{slug(line.source)}"
        jobs = []
        for preset in options.presets:
            for provider in options.providers:
                jobs.append(SweepJob(index, line.source, preset, provider, str(folder / f"{preset}-{provider}"),
                                     local_target(line.source), line.inputs, line.problem))
                index += 1
        groups.append(jobs)
    return groups


def slug(source: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", source.rstrip("/").split("/")[-1].split(":")[-1]).strip("_.")
    return stem[:60] or "model"


def local_target(source: str) -> str:
    """The source with a local path made absolute, so a worker in another directory finds it."""
    head, sep, tail = source.rpartition(":")
    if not (sep and head.endswith(".py")):
        head, sep, tail = source, "", ""
    if head.startswith(("zoo:", "keras:", "torch:")) or not Path(head).exists():
        return source
    return str(Path(head).resolve()) + sep + tail


def _check(options: SweepOptions) -> None:
    unknown = [p for p in options.presets if p not in PRESETS]
    if unknown or not options.presets:
        raise OnnxmendError(f"Unknown preset {unknown[0] if unknown else ''!r}; choose from {', '.join(PRESETS)}.")
    providers = ("auto", *PROVIDERS)
    bad = [p for p in options.providers if p not in providers]
    if bad or not options.providers:
        raise OnnxmendError(f"Unknown provider {bad[0] if bad else ''!r}; use {', '.join(providers)}.")
    if options.engine not in ("serial", "ray"):
        raise OnnxmendError(f"Unknown engine {options.engine!r}; use serial or ray.")
    if options.address and options.engine != "ray":
        raise OnnxmendError("--address names a Ray cluster; add --engine ray.")
    if options.timeout_s <= 0 or options.bench_seconds < 0 or options.cpus_per_model <= 0:
        raise OnnxmendError("--timeout and --cpus-per-model must be positive and --bench-seconds at least 0.")
