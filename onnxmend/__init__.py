"""onnxmend: export models to ONNX, fix what frameworks disagree on, prove parity with the source.

The flows are importable from the top level and load their frameworks only when called::

    import onnxmend
    result = onnxmend.convert("keras:MobileNetV2", "out/mnv2")
    print(result.validation.verdict)

``convert``, ``fix``, ``validate``, ``validate_layers``, ``diff``, ``quantize``, ``bench``, ``inspect`` and
``sweep`` are the functions in :mod:`onnxmend.flows`; ``ConvertOptions``, ``ExportOptions``, ``BenchOptions``,
``BlameOptions``, ``PlanOverrides``, ``Thresholds`` and ``SweepOptions`` configure them. The README's "Python
API" section has an example of each.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    "convert": "onnxmend.flows.convert",
    "ConvertOptions": "onnxmend.flows.convert_result",
    "fix": "onnxmend.flows.fix",
    "validate": "onnxmend.flows.validate",
    "quantize": "onnxmend.flows.quantize",
    "bench": "onnxmend.flows.bench",
    "inspect": "onnxmend.flows.inspect",
    "sweep": "onnxmend.flows.sweep",
    "SweepOptions": "onnxmend.flows.sweep_result",
    "validate_layers": "onnxmend.flows.layers",
    "diff": "onnxmend.flows.diff",
    "BlameOptions": "onnxmend.runtime.layers.blame",
    "ExportOptions": "onnxmend.exporters.options",
    "BenchOptions": "onnxmend.runtime.bench.options",
    "PlanOverrides": "onnxmend.runtime.quantize.plan",
    "Thresholds": "onnxmend.runtime.compare",
}
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    """The flows, imported on first use so ``import onnxmend`` stays fast and framework-free."""
    if name in _API:
        return getattr(importlib.import_module(_API[name]), name)
    raise AttributeError(f"module 'onnxmend' has no attribute {name!r}")
