"""End to end on keras.applications ConvNeXtTiny (random weights): every LayerNorm becomes one node."""

from __future__ import annotations

import pytest

from onnxmend.passes.base import PassContext
from onnxmend.passes.batch_norm import FoldBatchNorm
from onnxmend.passes.group_norm import FuseGroupNorm
from onnxmend.passes.layer_norm import FuseLayerNorm
from onnxmend.passes.manager import op_histogram, run_passes
from onnxmend.passes.norm_epsilons import inspect_norms, norm_epsilons

pytest.importorskip("tensorflow")


@pytest.mark.slow
def test_convnext_tiny_ends_with_23_layer_norms() -> None:
    from onnxmend.exporters.keras import export_keras_source
    from onnxmend.exporters.options import ExportOptions

    raw = export_keras_source("keras:ConvNeXtTiny", ExportOptions()).model
    assert inspect_norms(raw)["decomposed_layer_norm"] == 23
    passes = [FoldBatchNorm(), FuseLayerNorm(), FuseGroupNorm()]
    fixed, report = run_passes(raw, passes, PassContext(opset=17, framework="keras"), verify=True)
    ops = op_histogram(fixed)
    assert not report.rejected
    assert (ops.get("LayerNormalization"), ops.get("ReduceMean", 0), ops.get("Sqrt", 0), ops.get("Reciprocal", 0)) == (23, 0, 0, 0)
    assert all(row["differs"] and row["epsilon"] < 2e-6 for row in norm_epsilons(fixed, "keras"))
