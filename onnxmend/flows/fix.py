"""``fix``: run a pass pipeline on an existing ONNX file; the input file is never touched."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx

from onnxmend import __version__
from onnxmend.core.errors import OnnxmendError
from onnxmend.core.fileio import EXTERNAL_DATA_THRESHOLD, load_model_and_layout, save_model
from onnxmend.core.graph import model_opset
from onnxmend.core.interface import set_metadata, source_layout_specs
from onnxmend.core.interface_diff import TensorChange
from onnxmend.core.large import model_bytes
from onnxmend.core.outputs import claim_data_file, claim_file
from onnxmend.exporters.options import InputArg
from onnxmend.flows.interface import fix_interface
from onnxmend.flows.layout import IoLayout, LayoutChoice, choose_layout, layout_context
from onnxmend.passes.infra.base import PassContext
from onnxmend.passes.infra.catalogue import resolve
from onnxmend.passes.infra.growth import DEFAULT_MAX_GROWTH
from onnxmend.passes.infra.manager import ProgressHook, run_passes
from onnxmend.passes.infra.records import PipelineReport
from onnxmend.runtime.gate import DEFAULT_TIMEOUT_S, NumericGate
from onnxmend.runtime.inputs import synthesize
from onnxmend.runtime.inspect import Inspection, guess_framework, inspect_model


@dataclass
class FixResult:
    output: Path
    pipeline: PipelineReport
    before: Inspection
    after: Inspection
    interface: list[TensorChange] = field(default_factory=list)  # input file → output file
    keep_interface: bool = False

    @property
    def exit_code(self) -> int:
        """1 when a pass was rejected, 3 when the rewrite could not be verified numerically, else 0."""
        if self.pipeline.rejected:
            return 1
        return 3 if self.pipeline.unverified_reason else 0


def fix(input_path: str | Path, output_path: str | Path, preset: str = "fix", passes: str | None = None,
        verify: bool = True, layout: LayoutChoice = "auto", seed: int = 0, inputs: Sequence[InputArg] = (),
        progress: ProgressHook | None = None, force: bool = False, timeout_s: float = DEFAULT_TIMEOUT_S,
        keep_interface: bool = False, max_growth: float = DEFAULT_MAX_GROWTH) -> FixResult:
    """Rewrite ``input_path`` with a preset (or exactly ``passes``) and write ``output_path``.

    ``layout`` ``auto`` keeps the file's interface and lets fusions add Transposes; ``nchw``/``keep`` pin it
    (see :func:`~onnxmend.flows.layout.layout_context`). With ``verify`` every pass is gated numerically
    against the input graph on inputs seeded with ``seed``, at the sizes ``inputs`` give (``--input``) and
    the others the gate finds the graph runs at; each onnxruntime run of the gate may take ``timeout_s``.
    ``keep_interface`` rejects any rewrite that changes an input or output; ``max_growth`` any that grows the
    weights more than that many times. A file with external data is written with external data
    (``OUT.onnx.data`` beside ``output_path``), as is any model past 1 GiB.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    io_layout: IoLayout = choose_layout("keep" if layout == "auto" else layout, False, keep_interface)
    if output_path.resolve() == input_path.resolve():
        raise OnnxmendError("The output path is the input file; onnxmend never overwrites its input. Choose another -o.")
    claim_file(output_path, force)
    model, external = load_model_and_layout(input_path)
    if external or model_bytes(model) >= EXTERNAL_DATA_THRESHOLD:
        claim_data_file(output_path, force)
    selected = resolve(preset, passes)
    framework = guess_framework(model)
    ctx = PassContext(opset=model_opset(model), preset=preset if preset in ("fix", "portable", "none") else "fix",  # type: ignore[arg-type]
                      framework=framework, **layout_context(layout, io_layout, keep_interface))  # type: ignore[arg-type]
    gate = NumericGate(model, given_feeds(model, inputs, seed), seed=seed, timeout_s=timeout_s) if verify else None
    try:
        fixed, report = run_passes(model, selected, ctx, gate=gate, progress=progress, max_growth=max_growth)
    finally:
        if gate is not None:
            gate.close()
    set_metadata(fixed, "onnxmend.version", __version__)
    # Everything that can fail happens before the output is written: no run that ends in an error leaves it.
    before, after = inspect_model(model, input_path, framework), inspect_model(fixed, output_path, framework)
    interface = fix_interface(model, fixed, layout)
    # A file that kept its weights in external data is written the same way, whatever its size.
    save_model(fixed, output_path, external_threshold=0 if external else EXTERNAL_DATA_THRESHOLD)
    after.size_bytes = output_path.stat().st_size
    return FixResult(output_path, report, before, after, interface, keep_interface)



def given_feeds(model: onnx.ModelProto, inputs: Sequence[InputArg], seed: int) -> dict[str, np.ndarray] | None:
    """Seeded feeds at the sizes ``--input`` gives (in the layout the source took), or None without them."""
    if not inputs:
        return None
    specs = {s.name: s for s in source_layout_specs(model)}
    unknown = [a.name for a in inputs if a.name not in specs]
    if unknown:
        raise OnnxmendError(f"--input {unknown[0]} names no input of the model; its inputs are {', '.join(specs)}.")
    for arg in inputs:
        if len(arg.shape) != len(specs[arg.name].shape):
            shown = "x".join(str(d) if isinstance(d, int) else "?" for d in specs[arg.name].shape)
            raise OnnxmendError(f"--input {arg.name} has {len(arg.shape)} dims but the model's input is {shown}.")
    given = {a.name: replace(specs[a.name], shape=tuple(d if d is not None else s for d, s in zip(a.shape, specs[a.name].shape)))
             for a in inputs}
    return synthesize([given.get(name, spec) for name, spec in specs.items()], seed=seed)
