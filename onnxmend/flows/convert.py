"""``convert``: export → fix (gated passes) → validate against the source → write artifacts → optionally
quantize and benchmark, through the same flows the ``quantize`` and ``bench`` commands use.

This module orchestrates; exporters, passes and runtime compute. Every artifact is written atomically.
"""

from __future__ import annotations

import gc
import logging
import time
from dataclasses import replace
from pathlib import Path
from typing import Callable

import onnx

from onnxmend import __version__
from onnxmend.core.errors import OnnxmendError
from onnxmend.core.fileio import save_model, write_json, write_text
from onnxmend.core.graph import model_opset
from onnxmend.core.interface import set_metadata
from onnxmend.core.large import is_heavy
from onnxmend.core.outputs import claim_dir
from onnxmend.core.weight_files import remove_with, spill, weights_folder
from onnxmend.exporters import Export, export
from onnxmend.flows.bench import bench
from onnxmend.flows.convert_report import convert_markdown
from onnxmend.flows.convert_result import ConvertOptions, ConvertResult
from onnxmend.flows.data import prepare
from onnxmend.flows.fix import gate_for, gate_inputs_used
from onnxmend.flows.interface import convert_interface
from onnxmend.flows.layers import layers_after_failed_parity
from onnxmend.flows.layout import choose_layout, layout_context
from onnxmend.flows.quantize import quantize
from onnxmend.flows.validate import save_validation_outputs
from onnxmend.passes.infra.base import PassContext
from onnxmend.passes.infra.catalogue import resolve
from onnxmend.passes.infra.manager import run_passes
from onnxmend.passes.infra.records import PipelineReport
from onnxmend.runtime.bench.options import BenchOptions
from onnxmend.runtime.bench.results import write_report
from onnxmend.runtime.data import InputsUsed, LoadedInputs
from onnxmend.runtime.inputs import synthesize
from onnxmend.runtime.inspect import inspect_model
from onnxmend.runtime.layers.blame import BlameOptions
from onnxmend.runtime.layers.report import LayerReport
from onnxmend.runtime.quantize.quantizer import NothingToQuantize
from onnxmend.runtime.session import cuda_unavailable_reason
from onnxmend.runtime.validate import Validation, validate

__all__ = ["ConvertOptions", "ConvertResult", "convert"]

log = logging.getLogger(__name__)
Progress = Callable[[str], None]


def convert(source: str, out_dir: str | Path, options: ConvertOptions | None = None,
            progress: Progress | None = None) -> ConvertResult:
    """Export ``source``, fix it, validate the fixed graph against the source, and write ``out_dir``.

    ``source`` is any SOURCE form (``model.onnx``, ``keras:NAME``, ``file.py:factory``, ``model.pt2``,
    ``model.tflite``, ``zoo:NAME``, ...). ``out_dir`` receives ``raw.onnx``, ``model.onnx``,
    ``report.json`` and ``report.md`` (and the int8 artifact and benchmark when ``options`` asks).
    :class:`ConvertOptions` holds the export options (``--input``, opset, exporter), the passes (preset or
    names, gated or not, layout), the tolerances, seed, provider and threads. ``progress`` receives a short
    line per step. ``result.exit_code`` is what ``onnxmend convert`` exits with::

        result = convert("zoo:tf-same-conv-torch", "out/demo", ConvertOptions(quantize=True))
        result.validation.verdict, result.quantized.contents.verdict
    """
    options = options or ConvertOptions()
    say = progress or (lambda _msg: None)
    out_dir = Path(out_dir)
    passes = _preflight(source, out_dir, options)
    file = prepare(options.data, options.force, protect=[source, *(out_dir / name for name in OUTPUTS)])
    seconds: dict[str, float] = {}

    say(f"exporting {source}")
    start = time.perf_counter()
    exported = export(source, replace(options.export, seed=options.seed,
                                      keep_interface=options.keep_interface or options.export.keep_interface))
    seconds["export"] = time.perf_counter() - start
    _stamp(exported.model, exported)
    if is_heavy(exported.model):
        keep_weights_on_disk(exported)
    raw = exported.model
    loaded = file.fit(exported.inputs) if file is not None else None  # arrays as the source takes them

    start = time.perf_counter()
    layout = choose_layout(options.layout, exported.is_nhwc, options.keep_interface)
    fixed, report, gate_used = _fix(raw, exported, passes, layout, options, say, loaded)
    seconds["fix"] = time.perf_counter() - start

    say("validating against the source framework")
    start = time.perf_counter()
    raw_validation, validation = _validate(raw, fixed, exported, options, loaded)
    seconds["validate"] = time.perf_counter() - start

    result = ConvertResult(
        source, out_dir, exported, report, raw_validation, validation,
        inspect_model(raw, out_dir / "raw.onnx", exported.framework),
        inspect_model(fixed, out_dir / "model.onnx", exported.framework), layout, seconds, options.layout,
        interface=convert_interface(exported, fixed, options.export, options.layout),
        keep_interface=options.keep_interface, gate_inputs=gate_used,
    )
    result.layers = _layers_on_mismatch(fixed, result, options, say)
    _write(result, raw, fixed, options)
    _extras(result, options, say, loaded)
    return result


def _validate(raw: onnx.ModelProto, fixed: onnx.ModelProto, exported: Export, options: ConvertOptions,
              loaded: LoadedInputs | None) -> tuple[Validation, Validation]:
    """The raw export and the fixed graph against the source, on the same (seeded or loaded) inputs."""
    kwargs = dict(seed=options.seed, atol=options.atol, rtol=options.rtol, provider=options.provider,
                  threads=options.threads, loaded=loaded)
    return validate(raw, exported, **kwargs), validate(fixed, exported, **kwargs)  # type: ignore[arg-type]


def _write(result: ConvertResult, raw: onnx.ModelProto, fixed: onnx.ModelProto, options: ConvertOptions) -> None:
    """``--save-outputs``, then the report, then the models."""
    out_dir, validation = result.out_dir, result.validation
    if options.data.save is not None and validation.runs:
        result.saved_outputs = save_validation_outputs(options.data.save, validation, fixed, str(out_dir / "model.onnx"),
                                                       result.export.framework)
    # The report first, the models last, each renamed into place whole: a convert stopped half-way leaves
    # no model without the report that says whether it was validated.
    write_json(out_dir / "report.json", result.to_json())
    write_text(out_dir / "report.md", convert_markdown(result))
    save_model(raw, out_dir / "raw.onnx")
    save_model(fixed, out_dir / "model.onnx")


def _preflight(source: str, out_dir: Path, options: ConvertOptions) -> list:
    """What can be refused before the slow export: the output folder, --passes, a layout contradiction,
    CUDA that is not there. Returns the passes to run."""
    _check_output(source, out_dir, options.force)
    passes = resolve(options.preset, options.passes)
    choose_layout(options.layout, False, options.keep_interface)
    if options.provider == "cuda" and (reason := cuda_unavailable_reason()):
        raise OnnxmendError(f"CUDA was requested, but {reason}.")
    return passes


def _layers_on_mismatch(fixed: onnx.ModelProto, result: ConvertResult, options: ConvertOptions,
                        say: Progress) -> LayerReport | None:
    """When parity fails, which source layer diverges first (``layers.{json,md,png}``); a source that
    cannot be mapped layer by layer costs the note, never the conversion."""
    if result.validation.verdict != "mismatch":
        return None
    say("finding the first diverging layer")
    blame = BlameOptions(seed=options.seed, atol=options.atol, rtol=options.rtol)
    try:
        return layers_after_failed_parity(fixed, result.export, blame, result.out_dir)
    except OnnxmendError as exc:
        result.export.notes.append(f"per-layer comparison not run: {exc}")
        return None


def _fix(raw: onnx.ModelProto, exported: Export, passes: list, layout: str, options: ConvertOptions,
         say: Progress, loaded: LoadedInputs | None) -> tuple[onnx.ModelProto, PipelineReport, InputsUsed | None]:
    """The gated pass pipeline on the raw export, with the source's seeded (or the loaded) inputs as the gate's feeds."""
    preset = options.preset if not options.passes else "fix"
    ctx = PassContext(opset=model_opset(raw), preset=preset, framework=exported.framework,  # type: ignore[arg-type]
                      **layout_context(options.layout, layout, options.keep_interface))  # type: ignore[arg-type]
    gate = None
    if options.verify:  # synthetic feeds only for a gate, and only when nothing was loaded
        feeds = synthesize(exported.inputs, seed=options.seed) if loaded is None else None
        gate = gate_for(raw, loaded, feeds, options.seed)
    try:
        pipeline = run_passes(raw, passes, ctx, gate=gate, progress=say, max_growth=options.max_growth)
        return (*pipeline, gate_inputs_used(gate, loaded, options.seed))
    finally:
        if gate is not None:
            gate.close()


def _extras(result: ConvertResult, options: ConvertOptions, say: Progress, loaded: LoadedInputs | None) -> None:
    """The int8 artifact and the benchmark, after the main report is written, with the user's settings."""
    out = result.out_dir
    if options.quantize:
        say("quantizing")
        result.allow_no_gain = options.allow_no_gain
        try:
            result.quantized = quantize(
                out / "model.onnx", out, provider=options.provider, source=result.export, seed=options.seed,
                threads=options.threads, report_name="quantize.md", allow_no_gain=options.allow_no_gain, progress=say,
                loaded=loaded,
            )
        except NothingToQuantize as exc:
            result.int8_skipped = str(exc)
    if options.bench:
        say("benchmarking")
        models = [out / "raw.onnx", out / "model.onnx"] + ([out / "model.int8.onnx"] if result.quantized else [])
        providers = () if options.provider == "auto" else (options.provider,)
        bench_options = BenchOptions(providers=providers, threads=options.threads, seed=options.seed)
        result.benchmark = bench([str(m) for m in models], source=result.source, options=bench_options, loaded=loaded)
        write_report(result.benchmark, out)
    if options.quantize or options.bench:
        write_json(out / "report.json", result.to_json())


def keep_weights_on_disk(exported: Export) -> None:
    """Write a heavy export's big weights to a temporary file and keep only references to them in memory
    (:func:`onnxmend.core.weight_files.spill`): the raw export, the fixed graph and the models of every round share
    that one copy (keras VGG16: three 0.55 GB copies in memory otherwise). The file goes when ``exported``
    does (or at exit)."""
    folder = weights_folder()
    remove_with(exported, folder)
    exported.model = spill(exported.model, folder / "raw.weights")
    gc.collect()  # the in-memory model is garbage in reference cycles left by the exporter: freed now


def _stamp(model: onnx.ModelProto, exported: Export) -> None:
    set_metadata(model, "onnxmend.source", exported.source)
    set_metadata(model, "onnxmend.exporter", exported.exporter)
    set_metadata(model, "onnxmend.version", __version__)


OUTPUTS = ("raw.onnx", "model.onnx", "report.json", "report.md", "model.int8.onnx", "manifest.json",
           "quantize.md", "bench.json", "bench.png")


def _check_output(source: str, out_dir: Path, force: bool) -> None:
    path = Path(source)
    if path.suffix == ".onnx" and path.exists():
        for name in ("raw.onnx", "model.onnx"):
            target = out_dir / name
            if target.exists() and target.resolve() == path.resolve():
                raise OnnxmendError(
                    f"{path} would be overwritten by {name}; onnxmend never modifies its input. Choose another -o."
                )
    claim_dir(out_dir, OUTPUTS, force)
