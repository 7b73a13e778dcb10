"""``validate``: parity of an ONNX file against the source model it was exported from."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

import onnx

from onnxmend.core.errors import NeedsInputShapes
from onnxmend.core.fileio import load_model
from onnxmend.core.interface import source_layout_specs
from onnxmend.exporters import ExportOptions, export
from onnxmend.exporters.options import InputArg
from onnxmend.flows.data import prepare
from onnxmend.runtime.compare import DEFAULT_ATOL, DEFAULT_RTOL
from onnxmend.runtime.data import DataOptions, fit_model, save_outputs, to_model_layout
from onnxmend.runtime.session import Provider
from onnxmend.runtime.validate import Validation
from onnxmend.runtime.validate import validate as compare_with_source


def validate(model: str | Path, source: str, export_options: ExportOptions | None = None, *, seed: int = 0,
             atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL, provider: Provider = "auto",
             threads: int = 0, progress: Callable[[str], None] | None = None, data: DataOptions = DataOptions(),
             force: bool = False) -> Validation:
    """Run ``model`` on onnxruntime and ``source`` in its own framework on the same seeded inputs; compare.

    ``seed`` seeds the inputs and, as for ``convert``, a source's random weights (keras:NAME, the zoo).
    A factory source without ``example_inputs`` and without ``--input`` gets the shapes ``model`` declares,
    when they are static (in the layout the source took).
    ``data.load`` compares on the user's inputs instead (arrays as ``model`` takes them); ``data.save``
    writes both models' outputs (``onnx/…``, ``source/…``); ``force`` lets it replace a file onnxmend did not write.
    """
    inputs = prepare(data, force, protect=[model])
    onnx_model = load_model(model)
    loaded = fit_model(inputs, onnx_model) if inputs is not None else None
    say = progress or (lambda _msg: None)
    say(f"loading {source}")
    options = replace(export_options or ExportOptions(), seed=seed)
    try:
        exported = export(source, options)
    except NeedsInputShapes:
        shapes = static_inputs(onnx_model)
        if options.inputs or not shapes:
            raise
        exported = export(source, replace(options, inputs=shapes))
    say(f"comparing {Path(model).name} on onnxruntime with {exported.framework}")
    result = compare_with_source(onnx_model, exported, seed=seed, atol=atol, rtol=rtol, provider=provider,
                                 threads=threads, loaded=loaded)
    if data.save is not None and result.runs:
        save_validation_outputs(data.save, result, onnx_model, str(model), exported.framework)
    return result


def static_inputs(model: onnx.ModelProto) -> tuple[InputArg, ...]:
    """``model``'s inputs as ``--input`` values, in the source's layout; empty when a dim is not static."""
    specs = source_layout_specs(model)
    if not specs or not all(isinstance(d, int) and d > 0 for s in specs for d in s.shape):
        return ()
    return tuple(InputArg(s.name, tuple(int(d) for d in s.shape), s.dtype) for s in specs)  # type: ignore[arg-type]


def save_validation_outputs(path: Path, result: Validation, model: object, model_name: str, framework: str) -> Path:
    """``onnx/<output>`` (as ``model`` returns it) and ``source/<output>`` on every sample compared."""
    groups = {"onnx": [to_model_layout(actual, model) for _, actual in result.runs],  # type: ignore[arg-type]
              "source": [feed_set.outputs for feed_set, _ in result.runs]}
    what = {"onnx": f"{model_name} on onnxruntime ({result.provider})", "source": f"the source model ({framework})"}
    return save_outputs(path, groups, what, result.inputs)  # type: ignore[arg-type]
