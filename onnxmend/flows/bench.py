"""``bench``: time ONNX artifacts side by side, and the source framework beside them.

The timing is runtime's (:mod:`onnxmend.runtime.bench`); this flow turns a SOURCE into the source model
bench times (loaded natively when its framework allows, without converting it again) and is what both
``onnxmend bench`` and ``convert --bench`` call. With ``--load-inputs`` every subject is timed on the first
loaded batch (arrays as the first model takes them, or as the source takes them when only a source is benched).
"""

from __future__ import annotations

import os
import time
from dataclasses import replace
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx

from onnxmend.core.fileio import load_model
from onnxmend.core.interface import source_layout_specs
from onnxmend.exporters import ExportOptions, load_source
from onnxmend.flows.data import prepare
from onnxmend.runtime.bench.cells import bench as run_bench
from onnxmend.runtime.bench.engine import Clock
from onnxmend.runtime.bench.options import BenchOptions
from onnxmend.runtime.bench.results import BenchResult
from onnxmend.runtime.bench.source import BenchSource, source_specs
from onnxmend.runtime.data import (
    DataOptions,
    InputsUsed,
    LoadedInputs,
    fit_model,
    save_outputs,
    synthetic_inputs,
    to_model_layout,
)


def bench(models: Sequence[str | os.PathLike[str]], source: str | None = None,
          options: BenchOptions = BenchOptions(), clock: Clock = time.perf_counter_ns,
          trust_source: bool = False, data: DataOptions = DataOptions(), force: bool = False,
          loaded: LoadedInputs | None = None) -> BenchResult:
    """Benchmark ONNX ``models`` (and ``source`` in its own framework) over providers × batch sizes.

    :class:`BenchOptions` sets providers, batch sizes, warm-up, runs or seconds, interleaved rounds,
    threads, the onnxruntime optimisation level, TF32, the baseline subject and memory probing; ``clock``
    is replaceable for tests. ``data.load`` times every subject on the first loaded batch (``loaded``: already
    fitted, in the source's layout), at that batch only; ``data.save`` writes each subject's outputs on it
    (``<subject>/<output>``). Returns a :class:`BenchResult` (``write_report`` writes bench.json and
    bench.png)::

        result = bench(["raw.onnx", "model.onnx"], source="keras:MobileNetV2", options=BenchOptions(seconds=2))
        [(row.label, row.stats.p50_ms) for row in result.results if row.stats]
    """
    options.validate()
    file = prepare(data, force, protect=list(models))
    src = None
    if source:
        model = load_source(source, ExportOptions(seed=options.seed, trust_source=trust_source))
        src = BenchSource.of(source, model, options.compile)
    if loaded is None and file is not None:
        loaded = fit_model(file, load_model(models[0])) if models else file.fit(list(src.model.inputs))  # type: ignore[union-attr]
    feeds = loaded.samples[0] if loaded is not None else None
    if feeds is not None:
        firsts = [np.shape(v)[0] for v in feeds.values() if np.ndim(v)]
        options = replace(options, batches=(int(firsts[0]) if firsts else 1,))
    result = run_bench(models, src, options, clock, feeds=feeds)
    used = loaded.used(1, "timed") if loaded is not None else _synthetic(models, src, options)
    result.inputs = used.to_json()
    if data.save is not None and result.outputs:
        result.saved_outputs = _save(data.save, result, used)
    return result


def _synthetic(models: Sequence[str | os.PathLike[str]], src: BenchSource | None, options: BenchOptions) -> InputsUsed:
    """The seeded inputs' sizes as the first subject takes them, at every batch measured."""
    if models:
        specs = source_layout_specs(onnx.load(str(models[0]), load_external_data=False))
    else:
        specs = source_specs(src) if src is not None else []
    shapes = [{s.name: s.concrete_shape(batch, 8) for s in specs} for batch in options.batches]
    return synthetic_inputs([options.seed], shapes)


def _save(path: Path, result: BenchResult, used: InputsUsed) -> Path:
    paths = {row.label: row.path for row in result.results if row.kind == "onnx" and row.path}
    groups, what = {}, {}
    for label, outputs in result.outputs.items():
        if label in paths:
            model = onnx.load(str(paths[label]), load_external_data=False)
            groups[label], what[label] = [to_model_layout(outputs, model)], f"{paths[label]} on onnxruntime"
        else:
            groups[label], what[label] = [outputs], f"the source model ({label})"
    return save_outputs(path, groups, what, used)
