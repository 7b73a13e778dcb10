"""``bench``: time ONNX artifacts side by side, and the source framework beside them.

The timing is runtime's (:mod:`onnxmend.runtime.bench`); this flow turns a SOURCE into the source model
bench times (loaded natively when its framework allows, without converting it again) and is what both
``onnxmend bench`` and ``convert --bench`` call.
"""

from __future__ import annotations

import os
import time
from typing import Sequence

from onnxmend.exporters import ExportOptions, load_source
from onnxmend.runtime.bench.cells import bench as run_bench
from onnxmend.runtime.bench.engine import Clock
from onnxmend.runtime.bench.options import BenchOptions
from onnxmend.runtime.bench.results import BenchResult
from onnxmend.runtime.bench.source import BenchSource


def bench(models: Sequence[str | os.PathLike[str]], source: str | None = None,
          options: BenchOptions = BenchOptions(), clock: Clock = time.perf_counter_ns,
          trust_source: bool = False) -> BenchResult:
    """Benchmark ONNX ``models`` (and ``source`` in its own framework) over providers × batch sizes.

    :class:`BenchOptions` sets providers, batch sizes, warm-up, runs or seconds, interleaved rounds,
    threads, the onnxruntime optimisation level, TF32, the baseline subject and memory probing; ``clock``
    is replaceable for tests. Returns a :class:`BenchResult` (``write_report`` writes bench.json and
    bench.png)::

        result = bench(["raw.onnx", "model.onnx"], source="keras:MobileNetV2", options=BenchOptions(seconds=2))
        [(row.label, row.stats.p50_ms) for row in result.results if row.stats]
    """
    options.validate()
    src = None
    if source:
        loaded = load_source(source, ExportOptions(seed=options.seed, trust_source=trust_source))
        src = BenchSource.of(source, loaded, options.compile)
    return run_bench(models, src, options, clock)
