"""What ``validate --layers`` costs next to one plain inference: time (MobileNetV2) and peak memory (ConvNeXtTiny).

The model is exported and fixed once (``prepare``); then two fresh processes load the same seeded source
model and the same fixed ONNX file:

- ``plain``: the source framework and onnxruntime (all optimisations) each run the model — warm-up, then
  the median of ``--runs`` timed runs of each; peak RSS of the process;
- ``capture``: what ``validate --layers`` holds for its per-layer step: the layer comparison prepared once
  (the source as layers, the map, the probes) and run once cold (the tap model and the exposed onnxruntime
  session are built: the warm-up) and ``--repeat`` times warm: the capture alone (both sides run with the
  mapped tensors exposed, in chunks under ``--budget`` MiB) and the whole run (capture, compare, explain);
  the runs used; peak RSS.

The machine is shared: run it when it is quiet, or say it was busy (the script prints the load average).

    .venv/bin/python bench/layer_blame.py [--model keras:MobileNetV2] [--budget 256] [--runs 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def prepare(model: str, out: Path, seed: int) -> None:
    from onnxmend.core.fileio import save_model
    from onnxmend.exporters import ExportOptions, export
    from onnxmend.flows.layers import normalizer

    exported = export(model, ExportOptions(seed=seed))
    save_model(normalizer(exported)(exported.model), out / "fixed.onnx")


def source_model(model: str, seed: int):
    """The source with the weights ``export`` gives it for ``seed``, without running an exporter."""
    from onnxmend.exporters.options import ExportOptions

    if model.startswith("keras:"):
        from onnxmend.core.deps import require
        from onnxmend.exporters.base import SourceModel
        from onnxmend.exporters.keras.init import realistic_random_init
        from onnxmend.exporters.keras.source import application_value_range, build_application
        from onnxmend.exporters.keras.specs import declared_inputs, input_specs, output_names

        name = model[len("keras:"):]
        require("keras").utils.set_random_seed(seed)
        keras_model = build_application(name)
        value_range = application_value_range(name)
        realistic_random_init(keras_model, seed, value_range=value_range)
        declared = declared_inputs(keras_model)
        specs = input_specs(declared, (), False, {n: value_range for n, _, _ in declared} if value_range else {})
        return SourceModel("keras-model", "keras", keras_model, tuple(specs), tuple(output_names(keras_model)))
    from onnxmend.exporters.pytorch.export import prepare_module
    from onnxmend.models import build, zoo_entry

    name = model[len("zoo:"):]
    spec = zoo_entry(name)
    return prepare_module(build(name, seed), ExportOptions(seed=seed), [s.name for s in spec.inputs],
                          list(spec.outputs), spec.value_ranges)[0]


def measure(phase: str, model: str, folder: Path, seed: int, runs: int, repeat: int, budget: int) -> dict:
    import onnx

    from onnxmend.exporters.base import Export
    from onnxmend.runtime.inputs import synthesize
    from onnxmend.runtime.layers.blame import BlameOptions, LayerBlame
    from onnxmend.runtime.runners import onnx_runner, source_runner

    fixed = onnx.load(str(folder / "fixed.onnx"))
    source = source_model(model, seed)
    feeds = synthesize(source.inputs, seed=seed)
    result: dict[str, object] = {"phase": phase}
    if phase == "plain":
        runner, candidate = source_runner(source), onnx_runner(fixed, opt_level="all")
        for _ in range(2):
            runner.run(feeds), candidate.run(feeds)
        result["source_ms"] = _median_ms(lambda: runner.run(feeds), runs)
        result["onnx_ms"] = _median_ms(lambda: candidate.run(feeds), runs)
    else:
        export = Export(fixed, list(source.inputs), [], source, source.framework, "bench", model)
        start = time.perf_counter()
        blame = LayerBlame(fixed, export, BlameOptions(seed=seed, budget=budget * 2**20))
        prepare_s = time.perf_counter() - start
        cold = blame.run()
        warm = [blame.run() for _ in range(repeat)]
        report = warm[-1]
        result.update(prepare_ms=prepare_s * 1e3, cold_capture_ms=cold.run.capture_seconds * 1e3,
                      cold_run_ms=cold.run.seconds * 1e3,
                      capture_ms=statistics.median(r.run.capture_seconds for r in warm) * 1e3,
                      run_ms=statistics.median(r.run.seconds for r in warm) * 1e3,
                      runs=report.run.runs, points=len(report.results), verdict=report.verdict,
                      coverage=report.layer_map.coverage, peak_captured_mib=report.run.peak_bytes / 2**20)
    result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return result


def _median_ms(call, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        call()
        times.append((time.perf_counter_ns() - start) / 1e6)
    return statistics.median(times)


def _child(phase: str, args: argparse.Namespace, folder: Path) -> dict:
    cmd = [sys.executable, __file__, "--phase", phase, "--model", args.model, "--folder", str(folder),
           "--seed", str(args.seed), "--runs", str(args.runs), "--repeat", str(args.repeat), "--budget", str(args.budget)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="keras:MobileNetV2")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--budget", type=int, default=256, help="MiB of captured tensors per run")
    parser.add_argument("--phase", choices=["prepare", "plain", "capture"], default=None)
    parser.add_argument("--folder", default=None)
    args = parser.parse_args()
    if args.phase:  # a child: one phase, its result as the last stdout line
        folder = Path(args.folder)
        if args.phase == "prepare":
            prepare(args.model, folder, args.seed)
            print(json.dumps({"phase": "prepare"}))
        else:
            print(json.dumps(measure(args.phase, args.model, folder, args.seed, args.runs, args.repeat, args.budget)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        _child("prepare", args, folder)
        load = os.getloadavg()
        plain, capture = _child("plain", args, folder), _child("capture", args, folder)
    one = plain["source_ms"] + plain["onnx_ms"]
    print(json.dumps({"model": args.model, "budget_mib": args.budget, "loadavg_1_5_15": load, "plain": plain,
                      "capture": capture}, indent=2))
    c = capture
    print(f"{args.model}: plain inference {one:.1f} ms (source {plain['source_ms']:.1f} + onnxruntime "
          f"{plain['onnx_ms']:.1f}); layer capture, warm: {c['capture_ms']:.0f} ms = {c['capture_ms'] / one:.1f}x "
          f"(with comparing and explaining: {c['run_ms']:.0f} ms = {c['run_ms'] / one:.1f}x); first capture "
          f"{c['cold_capture_ms']:.0f} ms (tap model and exposed session built), preparing {c['prepare_ms']:.0f} ms; "
          f"{c['runs']} run(s) of each side, {c['points']} points, {c['peak_captured_mib']:.0f} MiB captured at most; "
          f"peak RSS {plain['peak_rss_mib']:.0f} -> {c['peak_rss_mib']:.0f} MiB = "
          f"{c['peak_rss_mib'] / plain['peak_rss_mib']:.2f}x; load average {load[0]:.1f}")

if __name__ == "__main__":
    main()
