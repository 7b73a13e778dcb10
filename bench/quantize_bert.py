"""Benchmark: dynamic int8 quantization of a BERT-style encoder (seed 003), with its done-when targets.

    .venv/bin/python bench/quantize_bert.py [--runs 50] [--out DIR]

Exports ``zoo:bert-encoder-torch`` (vocabulary 8000, hidden 256, 4 layers, sequence 128, int64 ids), or, when
the zoo cannot build it, the equivalent encoder defined here; quantizes it with the default plan
(MatMul/Gemm → MatMulInteger, the embedding Gather → int8 table) through ``quantize_model`` on CPU with
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

from onnxmend.errors import OnnxmendError
from onnxmend.exporters import ExportOptions, export
from onnxmend.fileio import save_model
from onnxmend.runtime.quantize import PlanOverrides, QuantizeResult, quantize_model
from onnxmend.runtime.quantize_gate import AccuracyReport, Thresholds, gate_accuracy

log = logging.getLogger("bench.quantize_bert")
ZOO_SOURCE = "zoo:bert-encoder-torch"
MIN_COSINE, MAX_SIZE_RATIO, MIN_SPEEDUP = 0.99, 0.35, 1.5


def build_encoder():  # noqa: ANN201  (torch is imported lazily; returns an nn.Module)
    """The fallback encoder: same sizes as the zoo model, torch's own TransformerEncoder layers."""
    import torch

    class Encoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tokens = torch.nn.Embedding(8000, 256)
            self.positions = torch.nn.Embedding(128, 256)
            self.norm = torch.nn.LayerNorm(256)
            layer = torch.nn.TransformerEncoderLayer(256, 4, 1024, dropout=0.0, activation="gelu", batch_first=True)
            self.encoder = torch.nn.TransformerEncoder(layer, 4, enable_nested_tensor=False)
            self.example_inputs = (torch.randint(0, 8000, (1, 128), generator=torch.Generator().manual_seed(0)),)

        def forward(self, input_ids):  # noqa: ANN001, ANN202
            positions = torch.arange(input_ids.shape[1])
            return self.encoder(self.norm(self.tokens(input_ids) + self.positions(positions)))

    torch.manual_seed(0)
    return Encoder().eval()


def export_encoder():  # noqa: ANN201  (returns an onnxmend Export)
    try:
        return export(ZOO_SOURCE, ExportOptions())
    except (OnnxmendError, ImportError, KeyError) as exc:
        log.warning("%s unavailable (%s); using the encoder defined in this file.", ZOO_SOURCE, exc)
    from onnxmend.exporters.pytorch import export_module

    return export_module(build_encoder(), f"{__file__}:build_encoder", ExportOptions(),
                         value_ranges={"input_ids": (0, 8000)})


def run(out_dir: Path, runs: int) -> tuple[QuantizeResult, AccuracyReport, str]:
    exported = export_encoder()
    raw = save_model(exported.model, out_dir / "raw" / "encoder.onnx")
    zoo = exported.source == ZOO_SOURCE
    result = quantize_model(raw, out_dir / "artifact", PlanOverrides(), provider="cpu",
                            source=ZOO_SOURCE if zoo else None, latency_runs=runs, threads=2, layers=False)
    vs_source = result.contents.vs_source
    if vs_source is None:  # the fallback encoder is no SOURCE string; compare with its runner directly
        from onnxmend.runtime.inputs import synthesize

        feeds = [synthesize(exported.inputs, seed=i) for i in range(3)]
        source_runs = [exported.source_runner(f) for f in feeds]  # type: ignore[misc]
        int8 = __import__("onnx").load(str(result.paths.int8))
        _, vs_source = gate_accuracy(exported.model, int8, feeds, "cpu", Thresholds(), source_runs, "source (torch)")
    return result, vs_source, exported.source  # type: ignore[return-value]


def table(result: QuantizeResult, vs_source: AccuracyReport, source: str) -> tuple[Table, bool]:
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
    parser.add_argument("--runs", type=int, default=50, help="latency runs per model (interleaved)")
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
