"""``fix``: run a pass pipeline on an existing ONNX file; the input file is never touched."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from onnxmend.core.errors import OnnxmendError
from onnxmend.core.fileio import load_model, save_model
from onnxmend.core.graph import model_opset
from onnxmend.flows.layout import IoLayout, LayoutChoice, layout_context
from onnxmend.passes.infra.base import PassContext
from onnxmend.passes.infra.catalogue import resolve
from onnxmend.passes.infra.manager import ProgressHook, run_passes
from onnxmend.passes.infra.records import PipelineReport
from onnxmend.runtime.gate import NumericGate
from onnxmend.runtime.inspect import Inspection, guess_framework, inspect_model


@dataclass
class FixResult:
    output: Path
    pipeline: PipelineReport
    before: Inspection
    after: Inspection

    @property
    def exit_code(self) -> int:
        """1 when a pass was rejected, 3 when the rewrite could not be verified numerically, else 0."""
        if self.pipeline.rejected:
            return 1
        return 3 if self.pipeline.unverified_reason else 0


def fix(input_path: str | Path, output_path: str | Path, preset: str = "fix", passes: str | None = None,
        verify: bool = True, layout: LayoutChoice = "auto", seed: int = 0,
        progress: ProgressHook | None = None) -> FixResult:
    """Rewrite ``input_path`` with a preset (or exactly ``passes``) and write ``output_path``.

    ``layout`` ``auto`` keeps the file's interface and lets fusions add Transposes; ``nchw``/``keep`` pin it
    (see :func:`~onnxmend.flows.layout.layout_context`). With ``verify`` every pass is gated numerically
    against the input graph on inputs seeded with ``seed``.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    if output_path.resolve() == input_path.resolve():
        raise OnnxmendError("The output path is the input file; onnxmend never overwrites its input. Choose another -o.")
    model = load_model(input_path)
    selected = resolve(preset, passes)
    io_layout: IoLayout = "nchw" if layout == "nchw" else "keep"
    framework = guess_framework(model)
    ctx = PassContext(opset=model_opset(model), preset=preset if preset in ("fix", "portable", "none") else "fix",  # type: ignore[arg-type]
                      framework=framework, **layout_context(layout, io_layout))  # type: ignore[arg-type]
    gate = NumericGate(model, seed=seed) if verify else None
    try:
        fixed, report = run_passes(model, selected, ctx, gate=gate, progress=progress)
    finally:
        if gate is not None:
            gate.close()
    save_model(fixed, output_path)
    return FixResult(output_path, report, inspect_model(model, input_path, framework),
                     inspect_model(fixed, output_path, framework))
