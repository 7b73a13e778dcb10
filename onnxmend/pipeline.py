"""The convert and fix pipelines: export → fix (gated passes) → validate → write artifacts.

This module orchestrates; exporters, passes and runtime compute. Every artifact is written atomically.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable, Literal

import onnx

from onnxmend import __version__
from onnxmend.core.errors import OnnxmendError
from onnxmend.exporters import Export, ExportOptions, export
from onnxmend.core.fileio import load_model, save_model, write_json, write_text
from onnxmend.passes.infra.base import PassContext
from onnxmend.passes.infra.catalogue import resolve
from onnxmend.core.graph import model_opset
from onnxmend.passes.infra.manager import run_passes
from onnxmend.passes.infra.records import PipelineReport
from onnxmend.runtime.gate import NumericGate
from onnxmend.runtime.compare import DEFAULT_ATOL, DEFAULT_RTOL
from onnxmend.runtime.inputs import synthesize
from onnxmend.runtime.inspect import Inspection, guess_framework, inspect_model
from onnxmend.core.interface import set_metadata
from onnxmend.runtime.report import convert_markdown
from onnxmend.runtime.session import cuda_unavailable_reason
from onnxmend.runtime.validate import Validation, validate

log = logging.getLogger(__name__)
Progress = Callable[[str], None]
LayoutChoice = Literal["auto", "nchw", "keep"]


@dataclass(frozen=True)
class ConvertOptions:
    export: ExportOptions = field(default_factory=ExportOptions)
    preset: str = "fix"
    passes: str | None = None
    verify: bool = True
    layout: LayoutChoice = "auto"
    atol: float = DEFAULT_ATOL
    rtol: float = DEFAULT_RTOL
    seed: int = 0
    provider: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = 0


@dataclass
class ConvertResult:
    source: str
    out_dir: Path
    export: Export
    pipeline: PipelineReport
    raw_validation: Validation
    validation: Validation
    before: Inspection
    after: Inspection
    layout: str
    seconds: dict[str, float]
    layout_choice: LayoutChoice = "auto"

    @property
    def exit_code(self) -> int:
        return 0 if self.validation.verdict == "pass" else 1

    def to_json(self) -> dict[str, object]:
        return {
            "onnxmend": __version__, "source": self.source, "framework": self.export.framework,
            "exporter": self.export.exporter, "layout": self.layout,
            "layout_choice": self.layout_choice,
            "inputs": [s.to_json() for s in self.export.inputs], "notes": self.export.notes,
            "verdict": self.validation.verdict, "validation": self.validation.to_json(),
            "raw_validation": self.raw_validation.to_json(), "passes": self.pipeline.to_json(),
            "before": self.before.to_json(), "after": self.after.to_json(),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "artifacts": {"raw": "raw.onnx", "model": "model.onnx", "report_md": "report.md"},
        }


def choose_layout(choice: LayoutChoice, exported: Export) -> Literal["nchw", "keep"]:
    """``auto`` means NCHW I/O for NHWC sources (the graph then has no boundary Transposes), else keep."""
    if choice == "auto":
        return "nchw" if exported.is_nhwc else "keep"
    return choice


def layout_context(choice: LayoutChoice, io_layout: Literal["nchw", "keep"]) -> dict[str, object]:
    """PassContext fields for a layout choice.

    ``auto`` lets a fusion add Transposes where the fused op is worth them (a channel LayerNorm of an NCHW
    graph becomes Transpose → LayerNormalization → Transpose; onnxruntime folds that pair into its NCHWc
    reorders). A pinned ``nchw`` or ``keep`` promises the Transpose count: none inside the graph, at most
    one at each NHWC input/output; such norms then stay decomposed.
    """
    return {"layout": io_layout, "fusions_may_transpose": choice == "auto"}


def convert(source: str, out_dir: str | Path, options: ConvertOptions | None = None,
            progress: Progress | None = None) -> ConvertResult:
    options = options or ConvertOptions()
    say = progress or (lambda _msg: None)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise OnnxmendError(f"{out_dir} exists and is not a directory.")
    _refuse_overwriting_source(source, out_dir)
    seconds: dict[str, float] = {}
    passes = resolve(options.preset, options.passes)  # bad --passes fails before the slow export
    if options.provider == "cuda" and (reason := cuda_unavailable_reason()):
        raise OnnxmendError(f"CUDA was requested, but {reason}.")

    say(f"exporting {source}")
    start = time.perf_counter()
    exported = export(source, replace(options.export, seed=options.seed))
    seconds["export"] = time.perf_counter() - start
    raw = exported.model
    _stamp(raw, exported)
    save_model(raw, out_dir / "raw.onnx")

    layout = choose_layout(options.layout, exported)
    ctx = PassContext(opset=model_opset(raw), preset=options.preset if not options.passes else "fix",  # type: ignore[arg-type]
                      framework=exported.framework, **layout_context(options.layout, layout))  # type: ignore[arg-type]
    feeds = synthesize(exported.inputs, seed=options.seed)
    start = time.perf_counter()
    gate = NumericGate(raw, feeds) if options.verify else None
    fixed, report = run_passes(raw, passes, ctx, gate=gate, progress=say)
    seconds["fix"] = time.perf_counter() - start
    save_model(fixed, out_dir / "model.onnx")

    say("validating against the source framework")
    start = time.perf_counter()
    kwargs = dict(seed=options.seed, atol=options.atol, rtol=options.rtol, provider=options.provider, threads=options.threads)
    raw_validation = validate(raw, exported, **kwargs)  # type: ignore[arg-type]
    validation = validate(fixed, exported, **kwargs)  # type: ignore[arg-type]
    seconds["validate"] = time.perf_counter() - start

    result = ConvertResult(
        source, out_dir, exported, report, raw_validation, validation,
        inspect_model(raw, out_dir / "raw.onnx", exported.framework),
        inspect_model(fixed, out_dir / "model.onnx", exported.framework), layout, seconds, options.layout,
    )
    write_json(out_dir / "report.json", result.to_json())
    write_text(out_dir / "report.md", convert_markdown(result))
    return result


@dataclass
class FixResult:
    output: Path
    pipeline: PipelineReport
    before: Inspection
    after: Inspection


def fix(input_path: str | Path, output_path: str | Path, preset: str = "fix", passes: str | None = None,
        verify: bool = True, layout: LayoutChoice = "auto", progress: Progress | None = None) -> FixResult:
    """Run a pass pipeline on an existing ONNX file; the input file is never touched.

    ``layout`` ``auto`` keeps the file's interface and lets fusions add Transposes; ``nchw``/``keep`` pin it
    (see :func:`layout_context`).
    """
    input_path, output_path = Path(input_path), Path(output_path)
    if output_path.resolve() == input_path.resolve():
        raise OnnxmendError("The output path is the input file; onnxmend never overwrites its input. Choose another -o.")
    model = load_model(input_path)
    selected = resolve(preset, passes)
    io_layout: Literal["nchw", "keep"] = "nchw" if layout == "nchw" else "keep"
    ctx = PassContext(opset=model_opset(model), preset=preset if preset in ("fix", "portable", "none") else "fix",  # type: ignore[arg-type]
                      framework=guess_framework(model), **layout_context(layout, io_layout))  # type: ignore[arg-type]
    fixed, report = run_passes(model, selected, ctx, gate=NumericGate(model) if verify else None, progress=progress)
    save_model(fixed, output_path)
    framework = guess_framework(model)
    return FixResult(output_path, report, inspect_model(model, input_path, framework),
                     inspect_model(fixed, output_path, framework))


def _stamp(model: onnx.ModelProto, exported: Export) -> None:
    set_metadata(model, "onnxmend.source", exported.source)
    set_metadata(model, "onnxmend.exporter", exported.exporter)
    set_metadata(model, "onnxmend.version", __version__)


def _refuse_overwriting_source(source: str, out_dir: Path) -> None:
    path = Path(source)
    if path.suffix == ".onnx" and path.exists():
        for name in ("raw.onnx", "model.onnx"):
            target = out_dir / name
            if target.exists() and target.resolve() == path.resolve():
                raise OnnxmendError(
                    f"{path} would be overwritten by {name}; onnxmend never modifies its input. Choose another -o."
                )
