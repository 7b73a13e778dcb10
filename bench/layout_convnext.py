"""CPU latency of ConvNeXtTiny before and after the layout passes.

Baseline: the raw tf2onnx export of ``keras:ConvNeXtTiny`` simplified by onnxsim. Candidate: the raw
export after cleanup, collapse-tensordot, io-layout (NCHW interface) and push-transposes, gated against the
raw export. (The layout passes go first: onnxsim fuses MatMul+Add into 2-D Gemms between the Tensordot
Reshapes, which collapse-tensordot does not undo.) Both run in onnxruntime on CPU with every graph optimisation on (ORT_ENABLE_ALL), 2 intra-op
threads, batch 1, timed interleaved (A, B, A, B, …) with ``perf_counter_ns``; the medians and their ratio
are printed.

    .venv/bin/python bench/layout_convnext.py [--model raw.onnx] [--runs 30]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import onnx

from onnxmend.passes.base import PassContext
from onnxmend.passes.cleanup import DedupeInitializers, EliminateDeadNodes, FoldConstants, RemoveIdentity
from onnxmend.passes.io_layout import IoLayout
from onnxmend.passes.layout import CollapseTensordot, PushTransposes, inspect_layout
from onnxmend.passes.manager import model_opset, op_histogram, run_passes
from onnxmend.runtime.interface import adapt_feeds
from onnxmend.runtime.session import create_session


def raw_export(path: str | None) -> onnx.ModelProto:
    if path:
        return onnx.load(path)
    from onnxmend.exporters.keras import export_keras_source
    from onnxmend.exporters.options import ExportOptions

    return export_keras_source("keras:ConvNeXtTiny", ExportOptions()).model


def simplify(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnxsim

    simplified, ok = onnxsim.simplify(model)
    if not ok:
        raise SystemExit("onnxsim could not validate its simplified ConvNeXtTiny")
    return simplified


def fix_layout(model: onnx.ModelProto) -> onnx.ModelProto:
    passes = [RemoveIdentity(), FoldConstants(), DedupeInitializers(), CollapseTensordot(), IoLayout(),
              PushTransposes(), EliminateDeadNodes()]
    fixed, report = run_passes(model, passes, PassContext(opset=model_opset(model), layout="nchw"), verify=True)
    if report.rejected:
        raise SystemExit(f"the gate rejected {[r.name for r in report.rejected]}")
    return fixed


def interleaved_medians(models: dict[str, onnx.ModelProto], feeds: dict[str, np.ndarray], runs: int) -> dict[str, float]:
    sessions = {k: create_session(m, provider="cpu", threads=2, opt_level="all") for k, m in models.items()}
    inputs = {k: adapt_feeds(feeds, m) for k, m in models.items()}
    for key, session in sessions.items():  # warm-up
        for _ in range(3):
            session.run(inputs[key])
    times: dict[str, list[int]] = {k: [] for k in models}
    for _ in range(runs):
        for key, session in sessions.items():
            start = time.perf_counter_ns()
            session.run(inputs[key])
            times[key].append(time.perf_counter_ns() - start)
    return {k: statistics.median(v) / 1e6 for k, v in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a saved raw tf2onnx export of ConvNeXtTiny (skips the Keras export)")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    raw = raw_export(args.model)
    baseline, fixed = simplify(raw), fix_layout(raw)
    image = np.random.default_rng(0).uniform(0, 255, (1, 224, 224, 3)).astype(np.float32)
    feeds = {baseline.graph.input[0].name: image}
    for name, model in (("onnxsim", baseline), ("layout passes", fixed)):
        hist = op_histogram(model)
        print(f"{name:>14}: {inspect_layout(model)['transposes']} Transposes, {hist.get('Reshape', 0)} Reshapes, "
              f"{hist.get('MatMul', 0)} MatMul, {hist.get('Conv', 0)} Conv, {sum(hist.values())} nodes")
    medians = interleaved_medians({"onnxsim": baseline, "layout passes": fixed}, feeds, args.runs)
    for name, ms in medians.items():
        print(f"{name:>14}: median {ms:.2f} ms over {args.runs} interleaved runs (ORT_ENABLE_ALL, CPU, 2 threads, batch 1)")
    print(f"speed-up (onnxsim / layout passes): {medians['onnxsim'] / medians['layout passes']:.3f}x")


if __name__ == "__main__":
    main()
