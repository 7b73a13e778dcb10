"""ConvNeXtTiny on onnxruntime CPU: onnxsim'd raw export vs onnxmend's fix preset with ``--layout auto``
(23 LayerNormalization; ONNX LayerNormalization normalizes trailing axes only, so each channel LayerNorm of
the NCHW graph sits in a Transpose pair), with ``--layout nchw`` (pinned: 0 Transposes, the channel norms
stay decomposed), and without fuse-gelu (onnxruntime does not fuse Keras' 1 − Erf(−x/√2) GELU spelling).

It also times the floor no graph rewrite can go below: the 18 blocks' pointwise convolution pairs and
exact-erf GELUs at ConvNeXtTiny's shapes, each alone in its own session.

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
from onnx import helper, numpy_helper

from onnxmend.core.graph import model_opset, op_histogram
from onnxmend.core.interface import adapt_feeds
from onnxmend.passes.infra.base import PassContext
from onnxmend.passes.infra.catalogue import resolve
from onnxmend.passes.infra.manager import run_passes
from onnxmend.passes.infra.presets import PRESETS
from onnxmend.runtime.gate import NumericGate
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


def fixed(model: onnx.ModelProto, names: tuple[str, ...], pinned: bool = False) -> onnx.ModelProto:
    ctx = PassContext(opset=model_opset(model), layout="nchw", framework="keras", fusions_may_transpose=not pinned)
    out, report = run_passes(model, resolve(None, list(names)), ctx, gate=NumericGate(model))
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
        "fix --layout nchw": fixed(raw, fix, pinned=True),
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
    print_floor(statistics.median(base))


# ConvNeXtTiny's stages: (spatial size, channels, blocks); each block is dwconv 7x7 → LayerNorm →
# 1x1 conv C→4C → GELU → 1x1 conv 4C→C.
STAGES = ((56, 96, 3), (28, 192, 3), (14, 384, 9), (7, 768, 3))


def print_floor(baseline_ms: float) -> None:
    """Time the work every fp32 rewrite must still do, op by op, and say what 1.3x would leave for the rest."""
    pointwise = gelu = 0.0
    for size, channels, blocks in STAGES:
        pointwise += blocks * _median_ms(_pointwise_pair(size, channels), (1, channels, size, size))
        gelu += blocks * _median_ms(_gelu(size, 4 * channels), (1, 4 * channels, size, size))
    print(f"{'floor':>24}: pointwise conv pairs alone {pointwise:.1f} ms + exact GELUs alone {gelu:.1f} ms "
          f"= {pointwise + gelu:.1f} ms; 1.3x the onnxsim baseline needs <= {baseline_ms / 1.3:.1f} ms in all")


def _median_ms(model: onnx.ModelProto, shape: tuple[int, ...], runs: int = 100) -> float:
    session = create_session(model, provider="cpu", threads=2, opt_level="all")
    feeds = {session.input_names[0]: np.random.default_rng(0).standard_normal(shape).astype(np.float32)}
    for _ in range(10):
        session.run(feeds)
    times = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        session.run(feeds)
        times.append((time.perf_counter_ns() - start) / 1e6)
    return statistics.median(times)


def _pointwise_pair(size: int, channels: int) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    up = rng.standard_normal((4 * channels, channels, 1, 1)).astype(np.float32) * 0.1
    down = rng.standard_normal((channels, 4 * channels, 1, 1)).astype(np.float32) * 0.1
    nodes = [helper.make_node("Conv", ["x", "up"], ["h"]), helper.make_node("Conv", ["h", "down"], ["y"])]
    return _single_input_model(nodes, (1, channels, size, size), (1, channels, size, size), [
        numpy_helper.from_array(up, "up"), numpy_helper.from_array(down, "down")])


def _gelu(size: int, channels: int) -> onnx.ModelProto:
    shape = (1, channels, size, size)
    return _single_input_model([helper.make_node("Gelu", ["x"], ["y"], domain="com.microsoft")], shape, shape, [])


def _single_input_model(nodes, in_shape, out_shape, initializers) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "floor", [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, in_shape)],
                              [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, out_shape)], initializers)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("com.microsoft", 1)],
                             ir_version=8)


def raw_shape(model: onnx.ModelProto) -> tuple[int, ...]:
    dims = model.graph.input[0].type.tensor_type.shape.dim
    return tuple(d.dim_value or 1 for d in dims)


if __name__ == "__main__":
    main()
