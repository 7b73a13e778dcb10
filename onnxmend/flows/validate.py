"""``validate``: parity of an ONNX file against the source model it was exported from."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

from onnxmend.core.fileio import load_model
from onnxmend.exporters import ExportOptions, export
from onnxmend.runtime.compare import DEFAULT_ATOL, DEFAULT_RTOL
from onnxmend.runtime.session import Provider
from onnxmend.runtime.validate import Validation
from onnxmend.runtime.validate import validate as compare_with_source


def validate(model: str | Path, source: str, export_options: ExportOptions | None = None, *, seed: int = 0,
             atol: float = DEFAULT_ATOL, rtol: float = DEFAULT_RTOL, provider: Provider = "auto",
             threads: int = 0, progress: Callable[[str], None] | None = None) -> Validation:
    """Run ``model`` on onnxruntime and ``source`` in its own framework on the same seeded inputs; compare.

    ``seed`` seeds the inputs and, as for ``convert``, a source's random weights (keras:NAME, the zoo).
    """
    say = progress or (lambda _msg: None)
    onnx_model = load_model(model)
    say(f"loading {source}")
    exported = export(source, replace(export_options or ExportOptions(), seed=seed))
    say(f"comparing {Path(model).name} on onnxruntime with {exported.framework}")
    return compare_with_source(onnx_model, exported, seed=seed, atol=atol, rtol=rtol, provider=provider,
                               threads=threads)
