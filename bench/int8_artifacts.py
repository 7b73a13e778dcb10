"""Benchmark: is `convert --quantize`'s int8 artifact worth shipping, model by model?

    .venv/bin/python bench/int8_artifacts.py [--models keras:ConvNeXtTiny,keras:MobileNetV2,zoo:bert-encoder-torch]
                                             [--out DIR]

Each model goes through ``onnxmend.flows.convert.convert`` with ``quantize=True`` (the fix preset, then
``quantize`` on the fixed graph with the gate against the source framework) on CPU with 2 threads. The table
gives, per model: what the int8 preparation rewrote, nodes quantized, size int8/fp32, latency of the fixed
fp32 graph and of the int8 graph (median of interleaved runs) and their ratio, cosine vs the source, and the
gate's verdict (PASS / NO GAIN / FAIL) with its reasons. ConvNeXtTiny's targets (issue: size ≤ 0.35x, not
slower than the fixed fp32 graph, cosine ≥ 0.99) are checked; exit 0 when they are met. The machine line
states the CPU and its flags: int8 speed-ups depend on VNNI.
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
from pathlib import Path

from rich.console import Console
from rich.table import Table

from onnxmend.flows.convert import convert
from onnxmend.flows.convert_result import ConvertOptions
from onnxmend.runtime.machine import machine_facts

MODELS = ("keras:ConvNeXtTiny", "keras:MobileNetV2", "zoo:bert-encoder-torch")
TARGETS = {"keras:ConvNeXtTiny": {"max_size": 0.35, "min_speedup": 1.0, "min_cosine": 0.99}}


def row(source: str, out: Path) -> dict[str, object]:
    result = convert(source, out, ConvertOptions(quantize=True, threads=2, allow_no_gain=True))
    quantized = result.quantized
    if quantized is None:
        return {"source": source, "verdict": "no-gain", "reasons": [result.int8_skipped]}
    contents, worth = quantized.contents, quantized.contents.worth
    assert worth is not None and contents.vs_source is not None
    latency = contents.latency
    return {
        "source": source, "prepared": "; ".join(contents.prepared) or "-",
        "nodes": f"{len(contents.plan.selected)} of {len(contents.plan.nodes)}",
        "size": worth.size_ratio, "fp32_ms": latency.fp32_ms if latency else None,
        "int8_ms": latency.int8_ms if latency else None, "speedup": worth.speedup,
        "cosine": min(o.cosine for o in contents.vs_source.outputs), "verdict": contents.verdict,
        "reasons": worth.shortfalls + contents.failures,
    }


def met(found: dict[str, object]) -> bool | None:
    target = TARGETS.get(str(found["source"]))
    if target is None or found.get("size") is None:
        return None
    return (float(found["size"]) <= target["max_size"] and float(found["speedup"] or 0) >= target["min_speedup"]  # type: ignore[arg-type]
            and float(found["cosine"]) >= target["min_cosine"])  # type: ignore[arg-type]


def render(rows: list[dict[str, object]]) -> Table:
    facts = machine_facts()
    table = Table(title=f"convert --quantize, CPU 2 threads — {facts.cpu_model} ({', '.join(facts.cpu_flags)}), "
                        f"load {facts.load_average[:1]}", title_justify="left")
    for col in ("source", "nodes int8", "size int8/fp32", "fixed fp32 ms", "int8 ms", "speed int8/fp32",
                "cosine vs source", "verdict", "target met", "reasons / preparation"):
        table.add_column(col)
    for found in rows:
        fmt = lambda key, spec: "-" if found.get(key) is None else format(found[key], spec)  # noqa: E731
        target = met(found)
        table.add_row(str(found["source"]), str(found.get("nodes", "-")), fmt("size", ".3f"), fmt("fp32_ms", ".1f"),
                      fmt("int8_ms", ".1f"), fmt("speedup", ".2f"), fmt("cosine", ".5f"), str(found["verdict"]),
                      "-" if target is None else ("yes" if target else "NO"),
                      "; ".join(map(str, found.get("reasons") or [])) or str(found.get("prepared", "-")))
    return table


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated SOURCEs")
    parser.add_argument("--out", type=Path, default=None, help="keep the conversions here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory(prefix="bench-int8-") as tmp:
        root = args.out or Path(tmp)
        rows = [row(source, root / source.replace(":", "_")) for source in args.models.split(",") if source]
    Console(width=250).print(render(rows))
    return 0 if all(met(r) is not False for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
