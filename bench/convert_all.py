"""Convert every keras.applications model the issues name and every zoo model; print parity, timings and
the op counts the passes are judged by (Pad, auto_pad, Transpose, LayerNormalization, ReduceMean, …).

    .venv/bin/python bench/convert_all.py [--out /tmp/onnxmend-all] [--only NAME ...] [--layout auto|keep]
"""

from __future__ import annotations

import argparse
import time

from onnxmend.core.fileio import load_model
from onnxmend.flows.convert import ConvertOptions, convert
from onnxmend.models import zoo_names

KERAS_APPS = ("MobileNetV2", "EfficientNetB0", "ResNet50", "ConvNeXtTiny")
COLUMNS = ("Pad", "Transpose", "LayerNormalization", "ReduceMean", "Sqrt", "Reciprocal", "BatchNormalization")


def row(source: str, out: str, layout: str) -> str:
    start = time.perf_counter()
    result = convert(source, out, ConvertOptions(layout=layout))  # type: ignore[arg-type]
    seconds = time.perf_counter() - start
    worst = result.validation.comparison.worst_max_abs_scaled
    raw_pads = auto_pad_nodes(load_model(f"{out}/raw.onnx"))
    fixed_pads = auto_pad_nodes(load_model(f"{out}/model.onnx"))
    counts = " | ".join(f"{result.before.ops.get(op, 0)}→{result.after.ops.get(op, 0)}" for op in COLUMNS)
    return (f"| {source} | {result.validation.verdict} | {worst:.2e} | {result.export.seconds:.1f} | {seconds:.1f} | "
            f"{result.before.nodes}→{result.after.nodes} | {raw_pads}→{fixed_pads} | {counts} | "
            f"{len(result.pipeline.rejected)} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/onnxmend-all")
    parser.add_argument("--only", nargs="*", help="sources to convert (default: the four apps and the whole zoo)")
    parser.add_argument("--layout", default="auto", choices=("auto", "nchw", "keep"))
    args = parser.parse_args()
    sources = args.only or [f"keras:{n}" for n in KERAS_APPS] + [f"zoo:{n}" for n in zoo_names()]
    print("| source | verdict | max abs / scale | export s | total s | nodes | auto_pad | "
          + " | ".join(COLUMNS) + " | rejected |")
    print("|" + "---|" * (8 + len(COLUMNS)))
    for source in sources:
        print(row(source, f"{args.out}/{source.replace(':', '_')}", args.layout), flush=True)


def auto_pad_nodes(model) -> int:
    """Conv/pool nodes that still use auto_pad SAME_*/VALID."""
    return sum(1 for n in model.graph.node for a in n.attribute if a.name == "auto_pad" and a.s != b"NOTSET")


if __name__ == "__main__":
    main()
