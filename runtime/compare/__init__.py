"""One comparator for every check: validation, the pass gate, the int8 gate and bench's agreement column.

``metrics`` computes the numbers (max abs, max rel, mean abs, cosine, SQNR, top-1) for one output pair;
``comparator`` pairs outputs (by name, else by order), computes them, and judges them with a criterion:
:class:`Tolerance` (allclose with atol scaled to the output and rtol) or :class:`Thresholds` (minimum
cosine / SQNR / top-1, for quantized artifacts).
"""

from onnxmend.runtime.compare.comparator import (
    DEFAULT_ATOL,
    DEFAULT_RTOL,
    Comparator,
    Comparison,
    OutputComparison,
    QuantizationSteps,
    Thresholds,
    Tolerance,
)

__all__ = [
    "DEFAULT_ATOL", "DEFAULT_RTOL", "Comparator", "Comparison", "OutputComparison", "QuantizationSteps", "Thresholds", "Tolerance",
]
