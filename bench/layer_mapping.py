"""``validate --layers`` on real models: how many source layers with weights are mapped, whether every
layer passes after ``convert``, and which layer is named when one Conv's weights are perturbed.

For each source: ``convert`` (the fix preset, gated), then :func:`onnxmend.validate_layers` of the written
``model.onnx`` against the same source (coverage, points compared, verdict); then the weights of one Conv
(the middle one, by default) are multiplied by ``--factor`` in a copy of ``model.onnx`` and the layer
report is run again: the first wrong layer it names should be the Conv's.

    .venv/bin/python bench/layer_mapping.py [--sources keras:MobileNetV2 keras:ConvNeXtTiny zoo:mobilenetv2-torch]
        [--factor 1.05] [--out bench/results/layer_mapping]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import onnx
from onnx import numpy_helper

SOURCES = ("keras:MobileNetV2", "keras:ConvNeXtTiny", "zoo:mobilenetv2-torch", "zoo:mobilenetv2-torch@legacy")


@dataclass
class Row:
    source: str
    mapped: str  # mapped/total source layers with weights
    points: int
    verdict: str  # of the unperturbed model: pass when every layer passes
    perturbed_node: str
    named: str | None  # the first wrong layer of the perturbed model
    seconds: float


def perturb(model: onnx.ModelProto, factor: float) -> str:
    """Multiply the weights of the middle Conv by ``factor`` (in place); returns the node's name."""
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    node = convs[len(convs) // 2]
    weight = next(t for t in model.graph.initializer if t.name == node.input[1])
    weight.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(weight) * np.float32(factor), weight.name))
    return node.name


def measure(source: str, out: Path, factor: float) -> Row:
    import onnxmend
    from onnxmend.core.fileio import load_model, save_model

    name, _, exporter = source.partition("@")
    export = onnxmend.ExportOptions(torch_exporter=exporter) if exporter else onnxmend.ExportOptions()
    start = time.perf_counter()
    folder = out / name.replace(":", "_").replace("/", "_") / (exporter or "default")
    onnxmend.convert(name, folder, onnxmend.ConvertOptions(export=export, force=True))
    _, clean = onnxmend.validate_layers(folder / "model.onnx", name, export)
    broken = load_model(folder / "model.onnx")
    node = perturb(broken, factor)
    save_model(broken, folder / "perturbed.onnx")
    _, named = onnxmend.validate_layers(folder / "perturbed.onnx", name, export)
    m = clean.layer_map
    return Row(source, f"{m.mapped_weighted}/{m.weighted}", len(m.points), clean.verdict, node, named.first_wrong,
               round(time.perf_counter() - start, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sources", nargs="+", default=list(SOURCES))
    parser.add_argument("--factor", type=float, default=1.05)
    parser.add_argument("--out", type=Path, default=Path("bench/results/layer_mapping"))
    args = parser.parse_args()
    rows = [measure(s, args.out, args.factor) for s in args.sources]
    print(f"load average {os.getloadavg()[0]:.1f}; weights of the middle Conv x{args.factor}")
    print("| source | layers with weights mapped | points | every layer passes | perturbed node | named as | s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r.source} | {r.mapped} | {r.points} | {'yes' if r.verdict == 'pass' else r.verdict} | "
              f"`{r.perturbed_node}` | `{r.named}` | {r.seconds} |")
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.json").write_text(json.dumps([asdict(r) for r in rows], indent=2))


if __name__ == "__main__":
    main()
