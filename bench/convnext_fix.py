"""ConvNeXtTiny on onnxruntime CPU: onnxsim'd raw export vs onnxmend's fix preset, the fix preset without
fuse-layer-norm (the only way to reach 0 Transposes: ONNX LayerNormalization normalizes trailing axes
only, so a channel LayerNorm in an NCHW graph needs a Transpose pair around it), and the fix preset
without fuse-gelu (onnxruntime does not fuse Keras' 1 − Erf(−x/√2) GELU spelling by itself).

Every candidate is run with ORT_ENABLE_ALL, 2 intra-op threads, batch 1, timed interleaved (A B C A B C …,
starting subject rotated each round) with perf_counter_ns after warm-up; medians, p10–p90 and the
per-round ratios against the onnxsim baseline are printed.

    .venv/bin/python bench/convnext_fix.py [--model raw.onnx] [--rounds 15] [--runs-per-round 3]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import onnx

from onnxmend.passes.base import PassContext
from onnxmend.passes.catalogue import PRESETS, resolve
from onnxmend.passes.manager import model_opset, op_histogram, run_passes
from onnxmend.runtime.interface import adapt_feeds
from onnxmend.runtime.session import create_session


def raw_export(path: str | None) -> onnx.ModelProto:
    if path:
        return onnx.load(path)
    from onnxmend.exporters import ExportOptions, export

    return export("keras:ConvNeXtTiny", ExportOptions()).model


def simplify(model: onnx.ModelProto) -> onnx.ModelProto:
    import onnxsim

    simplified, ok = onnxsim.simplify(model)
    if not ok:
        raise SystemExit("onnxsim could not validate its simplified model")
    return simplified


def fixed(model: onnx.ModelProto, names: tuple[str, ...]) -> onnx.ModelProto:
    ctx = PassContext(opset=model_opset(model), layout="nchw", framework="keras")
    out, report = run_passes(model, resolve(None, list(names)), ctx, verify=True)
    if report.rejected:
        raise SystemExit(f"the gate rejected {[r.name for r in report.rejected]}")
    return out


def measure(models: dict[str, onnx.ModelProto], image: np.ndarray, rounds: int, per_round: int) -> dict[str, list[float]]:
    sessions = {k: create_session(m, provider="cpu", threads=2, opt_level="all") for k, m in models.items()}
    name = next(iter(models.values())).graph.input[0].name
    feeds = {k: adapt_feeds({name: image}, m) for k, m in models.items()}
    for key, session in sessions.items():
        for _ in range(3):
            session.run(feeds[key])
    times: dict[str, list[float]] = {k: [] for k in models}
    keys = list(models)
    for r in range(rounds):
        for key in keys[r % len(keys):] + keys[: r % len(keys)]:
            block = []
            for _ in range(per_round):
                start = time.perf_counter_ns()
                sessions[key].run(feeds[key])
                block.append((time.perf_counter_ns() - start) / 1e6)
            times[key].append(statistics.median(block))
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a saved raw export of keras:ConvNeXtTiny (skips the export)")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs-per-round", type=int, default=3)
    args = parser.parse_args()
    raw = raw_export(args.model)
    fix = PRESETS["fix"]
    candidates = {
        "onnxsim(raw)": simplify(raw),
        "fix": fixed(raw, fix),
        "fix w/o fuse-layer-norm": fixed(raw, tuple(n for n in fix if n != "fuse-layer-norm")),
        "fix w/o fuse-gelu": fixed(raw, tuple(n for n in fix if n != "fuse-gelu")),
    }
    for name, model in candidates.items():
        hist = op_histogram(model)
        print(f"{name:>24}: {sum(hist.values())} nodes, Transpose {hist.get('Transpose', 0)}, "
              f"LayerNormalization {hist.get('LayerNormalization', 0)}, ReduceMean {hist.get('ReduceMean', 0)}")
    image = np.random.default_rng(0).uniform(0, 255, raw_shape(raw)).astype(np.float32)
    times = measure(candidates, image, args.rounds, args.runs_per_round)
    base = times["onnxsim(raw)"]
    for name, values in times.items():
        ratios = sorted(b / v for b, v in zip(base, values))
        q = lambda p: ratios[min(len(ratios) - 1, int(p * len(ratios)))]  # noqa: E731
        print(f"{name:>24}: median {statistics.median(values):7.1f} ms   speed-up vs onnxsim "
              f"{statistics.median(ratios):.3f}x  [p10 {q(0.1):.3f}, p90 {q(0.9):.3f}]")


def raw_shape(model: onnx.ModelProto) -> tuple[int, ...]:
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return tuple(d.dim_value or 1 for d in dims)


if __name__ == "__main__":
    main()
