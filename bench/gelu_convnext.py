"""keras:ConvNeXtTiny on onnxruntime CPU: does fuse-gelu pay for itself in the fix preset below opset 20?

tf2onnx spells Keras' exact GELU as 0.5·x·(1 − Erf(−x/√2)), which onnxruntime's own GeluFusion does not
recognise; below opset 20 fuse-gelu turns each chain into onnxruntime's ``com.microsoft`` Gelu. Three
candidates, all from the same raw export (opset 17):

- ``onnxsim(raw)``: the raw export simplified by onnxsim (the baseline every ratio is against),
- ``fix``: ``run_passes(raw, resolve("fix"), PassContext(opset=17, layout="nchw", framework="keras"))``,
- ``fix+fuse-gelu``: the same preset with fuse-gelu inserted before eliminate-dead-nodes.

Each runs with ORT_ENABLE_ALL, 2 intra-op threads, batch 1, timed interleaved (starting subject rotated
each round) with perf_counter_ns after warm-up, by ``bench/convnext_fix.py``'s ``measure``. Printed: node
counts, the largest output difference between the two fix variants at ORT_ENABLE_ALL, medians, and the
median/p10/p90 of the per-round speed-ups against onnxsim.

    .venv/bin/python bench/gelu_convnext.py [--model raw.onnx] [--save raw.onnx] [--rounds 15]
"""

from __future__ import annotations

import argparse
import statistics

import numpy as np
import onnx

from convnext_fix import measure, raw_export, raw_shape, simplify
from onnxmend.passes.base import PassContext
from onnxmend.passes.catalogue import resolve
from onnxmend.passes.gelu import FuseGelu
from onnxmend.passes.manager import op_histogram, run_passes
from onnxmend.runtime.interface import adapt_feeds
from onnxmend.runtime.session import create_session

CTX = PassContext(opset=17, preset="fix", layout="nchw", framework="keras")


def fixed(raw: onnx.ModelProto, with_gelu: bool) -> onnx.ModelProto:
    passes = resolve("fix")
    if with_gelu:
        at = next(i for i, p in enumerate(passes) if p.name == "eliminate-dead-nodes")
        passes.insert(at, FuseGelu())
    out, report = run_passes(raw, passes, CTX, verify=True)
    if report.rejected:
        raise SystemExit(f"the gate rejected {[r.name for r in report.rejected]}")
    for note in report.notes.get("fuse-gelu", []):
        print(f"fuse-gelu: {note}")
    return out


def describe(name: str, model: onnx.ModelProto) -> None:
    hist = op_histogram(model)
    domains = ", ".join(f"{o.domain or 'ai.onnx'} {o.version}" for o in model.opset_import)
    print(f"{name:>14}: {sum(hist.values())} nodes, Erf {hist.get('Erf', 0)}, Gelu {hist.get('Gelu', 0)}, "
          f"Neg {hist.get('Neg', 0)}, Mul {hist.get('Mul', 0)}, Transpose {hist.get('Transpose', 0)}; "
          f"imports {domains}")


def max_output_diff(a: onnx.ModelProto, b: onnx.ModelProto, image: np.ndarray) -> float:
    """Largest |a − b| over all outputs, both run as benchmarked (ORT_ENABLE_ALL, CPU)."""
    name = a.graph.input[0].name
    outs = [create_session(m, provider="cpu", threads=2, opt_level="all").run(adapt_feeds({name: image}, m))
            for m in (a, b)]
    return max(float(np.max(np.abs(outs[0][k] - outs[1][k]))) for k in outs[0])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="a saved raw export of keras:ConvNeXtTiny (skips the export)")
    parser.add_argument("--save", help="save the raw export here for later --model runs")
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--runs-per-round", type=int, default=3)
    args = parser.parse_args()
    raw = raw_export(args.model)
    if args.save:
        onnx.save(raw, args.save)
    candidates = {"onnxsim(raw)": simplify(raw), "fix": fixed(raw, False), "fix+fuse-gelu": fixed(raw, True)}
    for name, model in candidates.items():
        describe(name, model)
    image = np.random.default_rng(0).uniform(0, 255, raw_shape(raw)).astype(np.float32)
    diff = max_output_diff(candidates["fix"], candidates["fix+fuse-gelu"], image)
    print(f"max |fix − fix+fuse-gelu| at ORT_ENABLE_ALL: {diff:.3g}")
    times = measure(candidates, image, args.rounds, args.runs_per_round)
    base = times["onnxsim(raw)"]
    for name, values in times.items():
        ratios = sorted(b / v for b, v in zip(base, values))
        q = lambda p: ratios[min(len(ratios) - 1, int(p * len(ratios)))]  # noqa: E731
        print(f"{name:>14}: median {statistics.median(values):7.1f} ms   speed-up vs onnxsim "
              f"{statistics.median(ratios):.3f}x  [p10 {q(0.1):.3f}, p90 {q(0.9):.3f}]")
    gelu = sorted(f / g for f, g in zip(times["fix"], times["fix+fuse-gelu"]))
    print(f"fix+fuse-gelu vs fix: median per-round speed-up {statistics.median(gelu):.3f}x "
          f"[min {gelu[0]:.3f}, max {gelu[-1]:.3f}]")


if __name__ == "__main__":
    main()
