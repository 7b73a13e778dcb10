"""Benchmark: dynamic int8 quantization of a BERT-style encoder (seed 003), with its done-when targets.

    .venv/bin/python bench/quantize_bert.py [--runs 50] [--out DIR]

Exports ``zoo:bert-encoder-torch`` (vocabulary 8000, hidden 512, 4 layers, 8 heads, sequence 128, int64 ids);
quantizes it with the default plan
(MatMul/Gemm → MatMulInteger, the embedding Gather → int8 table) through ``onnxmend.flows.quantize.quantize`` on CPU with
2 threads, batch 1; and prints a table against the targets: cosine ≥ 0.99 vs the torch source,
size ≤ 0.35x of fp32, int8 ≥ 1.5x faster than fp32. Exit code 0 when every target is met, 1 otherwise.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from onnxmend.core.fileio import save_model
from onnxmend.exporters import ExportOptions, export
from onnxmend.flows.quantize import QuantizeResult, quantize
from onnxmend.runtime.compare import Comparison
from onnxmend.runtime.quantize.plan import PlanOverrides

ZOO_SOURCE = "zoo:bert-encoder-torch"
MIN_COSINE, MAX_SIZE_RATIO, MIN_SPEEDUP = 0.99, 0.35, 1.5


def run(out_dir: Path, runs: int) -> tuple[QuantizeResult, Comparison, str]:
    exported = export(ZOO_SOURCE, ExportOptions())
    raw = save_model(exported.model, out_dir / "raw" / "encoder.onnx")
    result = quantize(raw, out_dir / "artifact", PlanOverrides(), provider="cpu",
                            source=exported, latency_runs=runs, threads=2, layers=False)
    assert result.contents.vs_source is not None  # a source was given
    return result, result.contents.vs_source, ZOO_SOURCE


def table(result: QuantizeResult, vs_source: Comparison, source: str) -> tuple[Table, bool]:
    latency = result.contents.latency
    ratio = float(result.manifest["size_ratio"])  # type: ignore[arg-type]
    cosine = min(o.cosine for o in vs_source.outputs)
    speedup = latency.speedup if latency else math.nan
    files = result.manifest["files"]  # type: ignore[index]
    rows = [
        ("fp32 size (MB)", f"{files['model.onnx']['bytes'] / 1e6:.2f}", "", None),
        ("int8 size (MB)", f"{files['model.int8.onnx']['bytes'] / 1e6:.2f}", "", None),
        ("size ratio", f"{ratio:.3f}", f"≤ {MAX_SIZE_RATIO}", ratio <= MAX_SIZE_RATIO),
        ("cosine vs fp32 ONNX (min)", f"{min(o.cosine for o in result.contents.vs_fp32.outputs):.5f}", "", None),
        ("cosine vs torch source (min)", f"{cosine:.5f}", f"≥ {MIN_COSINE}", cosine >= MIN_COSINE),
        ("fp32 latency (ms, median)", f"{latency.fp32_ms:.2f}" if latency else "-", "", None),
        ("int8 latency (ms, median)", f"{latency.int8_ms:.2f}" if latency else "-", "", None),
        ("speedup", f"{speedup:.2f}x", f"≥ {MIN_SPEEDUP}x", speedup >= MIN_SPEEDUP),
    ]
    plan = result.plan
    out = Table(title=f"{source}: {len(plan.selected)} nodes quantized ({', '.join(plan.op_types)}; "
                      f"reduce_range={plan.reduce_range}), CPU, 2 threads, batch 1, seq 128", title_justify="left")
    for col in ("metric", "value", "target", "met"):
        out.add_column(col)
    for name, value, target, met in rows:
        out.add_row(name, value, target, "" if met is None else ("[green]yes[/]" if met else "[red]no[/]"))
    return out, all(met for *_, met in rows if met is not None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100, help="latency runs per model (interleaved)")
    parser.add_argument("--out", type=Path, default=None, help="keep the artifact folder here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-quantize-") as tmp:
        result, vs_source, source = run(args.out or Path(tmp), args.runs)
        rendered, ok = table(result, vs_source, source)
        Console().print(rendered)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
