"""``fix``: run a pass pipeline on an existing ONNX file; the input file is never touched."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import onnx

from onnxmend import __version__
from onnxmend.core.errors import OnnxmendError
from onnxmend.core.fileio import EXTERNAL_DATA_THRESHOLD, external_locations, load_model_and_layout, save_model
from onnxmend.core.graph import model_opset
from onnxmend.core.interface import set_metadata, source_layout_specs
from onnxmend.core.interface_diff import TensorChange
from onnxmend.core.large import model_bytes
from onnxmend.core.outputs import claim_data_file, claim_file
from onnxmend.exporters.options import InputArg
from onnxmend.flows.data import prepare
from onnxmend.flows.interface import fix_interface
from onnxmend.flows.layout import IoLayout, LayoutChoice, choose_layout, layout_context
from onnxmend.passes.infra.base import PassContext
from onnxmend.passes.infra.catalogue import resolve
from onnxmend.passes.infra.growth import DEFAULT_MAX_GROWTH
from onnxmend.passes.infra.manager import ProgressHook, run_passes
from onnxmend.passes.infra.records import PipelineReport
from onnxmend.runtime.data import (
    COMPARE_CAP,
    GATE_CAP,
    DataOptions,
    InputsUsed,
    LoadedInputs,
    fit_model,
    save_outputs,
    shapes_of,
    synthetic_inputs,
)
from onnxmend.runtime.data.run import run_onnx
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
    inputs: InputsUsed | None = None  # what the gate checked (None when nothing ran)
    saved_outputs: Path | None = None

    @property
    def exit_code(self) -> int:
        """1 when a pass was rejected, 3 when the rewrite could not be verified numerically, else 0."""
        if self.pipeline.rejected:
            return 1
        return 3 if self.pipeline.unverified_reason else 0


def fix(input_path: str | Path, output_path: str | Path, preset: str = "fix", passes: str | None = None,
        verify: bool = True, layout: LayoutChoice = "auto", seed: int = 0, inputs: Sequence[InputArg] = (),
        progress: ProgressHook | None = None, force: bool = False, timeout_s: float = DEFAULT_TIMEOUT_S,
        keep_interface: bool = False, max_growth: float = DEFAULT_MAX_GROWTH, data: DataOptions = DataOptions()
        ) -> FixResult:
    """Rewrite ``input_path`` with a preset (or exactly ``passes``) and write ``output_path``.

    ``layout`` ``auto`` keeps the file's interface and lets fusions add Transposes; ``nchw``/``keep`` pin it
    (see :func:`~onnxmend.flows.layout.layout_context`). With ``verify`` every pass is gated numerically
    against the input graph on inputs seeded with ``seed``, at the sizes ``inputs`` give (``--input``) and
    the others the gate finds the graph runs at; each onnxruntime run of the gate may take ``timeout_s``.
    ``data.load`` gives the gate the user's inputs (arrays as the input file takes them) instead of
    ``inputs``; ``data.save`` writes the outputs of the input graph (``source/…``) and the fixed graph
    (``onnx/…``). ``keep_interface`` rejects any rewrite that changes an input or output; ``max_growth`` any
    that grows the weights more than that many times. A file with external data is written with external
    data (``OUT.onnx.data`` beside ``output_path``), as is any model past 1 GiB.
    """
    input_path, output_path = Path(input_path), Path(output_path)
    io_layout: IoLayout = choose_layout("keep" if layout == "auto" else layout, False, keep_interface)
    if output_path.resolve() == input_path.resolve():
        raise OnnxmendError("The output path is the input file; onnxmend never overwrites its input. Choose another -o.")
    if data.load is not None and inputs:
        raise OnnxmendError("--input and --load-inputs both give the gate its inputs; give one of them.")
    claim_file(output_path, force)
    file = prepare(data, force, protect=[input_path, output_path])
    model, external = _load_input(input_path, output_path, force)
    loaded = fit_model(file, model) if file is not None else None
    selected = resolve(preset, passes)
    framework = guess_framework(model)
    ctx = PassContext(opset=model_opset(model), preset=preset if preset in ("fix", "portable", "none") else "fix",  # type: ignore[arg-type]
                      framework=framework, **layout_context(layout, io_layout, keep_interface))  # type: ignore[arg-type]
    gate = gate_for(model, loaded, given_feeds(model, inputs, seed), seed, timeout_s) if verify else None
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
    result = FixResult(output_path, report, before, after, interface, keep_interface,
                       inputs=gate_inputs_used(gate, loaded, seed))
    if data.save is not None:
        names = (str(input_path), str(output_path))
        result.saved_outputs, used = _save(data.save, model, fixed, names, gate, loaded, inputs, seed)
        result.inputs = result.inputs or used
    return result


def _load_input(input_path: Path, output_path: Path, force: bool) -> tuple[onnx.ModelProto, bool]:
    """The input model (a heavy one's big external weights left in its data file) and whether it had external
    data; refuses an output whose data file is not ours to replace, or is the input's."""
    model, external = load_model_and_layout(input_path, lazy=True)
    if external and _writes_input_data(input_path, output_path):
        raise OnnxmendError(f"The output's data file {output_path.name}.data is the input's external data; onnxmend "
                            "never overwrites its input. Choose another -o.")
    if external or model_bytes(model) >= EXTERNAL_DATA_THRESHOLD:
        claim_data_file(output_path, force)
    return model, external


def _writes_input_data(input_path: Path, output_path: Path) -> bool:
    """True when the output's data file would be one the input's tensors are stored in."""
    locations = external_locations(onnx.load(str(input_path), load_external_data=False))
    target = output_path.with_name(output_path.name + ".data").resolve()
    return any((input_path.parent / location).resolve() == target for location in locations)


def gate_for(model: onnx.ModelProto, loaded: LoadedInputs | None, feeds: Mapping[str, np.ndarray] | None, seed: int,
             timeout_s: float = DEFAULT_TIMEOUT_S) -> NumericGate:
    """The numeric gate of ``model`` on the loaded samples when there are any, else on ``feeds`` (None: the
    sizes the gate finds); ``convert`` and ``fix`` build theirs here. It takes its references in the
    background: onnxruntime builds the input graph's session in its worker while the pipeline's first round
    runs here (at 100,000 nodes the references take about 9 s of a gated run)."""
    samples = loaded.take(GATE_CAP) if loaded is not None else None
    return NumericGate(model, None if samples else feeds, seed=seed, timeout_s=timeout_s, samples=samples,
                       background=True)


def gate_inputs_used(gate: NumericGate | None, loaded: LoadedInputs | None, seed: int) -> InputsUsed | None:
    """What the gate checked: the loaded samples (and the synthetic sizes beside them), or synthetic ones."""
    if gate is None or not gate.plan.sets:
        return None
    if loaded is None:
        return synthetic_inputs([seed], [shapes_of(s.feeds) for s in gate.plan.sets])
    used = loaded.used(min(GATE_CAP, len(loaded.samples)))
    extra = [s.label for s in gate.plan.sets if not s.label.startswith("sample ")]
    if not extra:
        return used
    return replace(used, summary=f"{used.summary}; the gate also checked synthetic inputs at {'; '.join(extra)}",
                   notes=used.notes + (f"synthetic sizes also checked (seed {seed}): {'; '.join(extra)}",))


def _save(path: Path, model: onnx.ModelProto, fixed: onnx.ModelProto, names: tuple[str, str], gate: NumericGate | None,
          loaded: LoadedInputs | None, inputs: Sequence[InputArg], seed: int) -> tuple[Path, InputsUsed]:
    """The input graph's and the fixed graph's outputs on the loaded samples (or the gate's first inputs)."""
    if loaded is not None:
        samples, used = loaded.take(COMPARE_CAP), loaded.used(COMPARE_CAP)
    else:
        first = gate.plan.sets[0].feeds if gate is not None and gate.plan.sets else None
        samples = [first or given_feeds(model, inputs, seed) or synthesize(source_layout_specs(model), seed=seed)]
        used = synthetic_inputs([seed], [shapes_of(samples[0])])
    groups = {"onnx": run_onnx(fixed, samples, "the fixed graph"), "source": run_onnx(model, samples, "the input graph")}
    what = {"onnx": f"the fixed graph {names[1]} on onnxruntime CPU", "source": f"the input graph {names[0]} on onnxruntime CPU"}
    return save_outputs(path, groups, what, used), used


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
