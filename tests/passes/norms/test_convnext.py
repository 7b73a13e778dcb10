"""End to end on keras.applications ConvNeXtTiny (random weights): every LayerNorm becomes one node."""

from __future__ import annotations

import pytest

from onnxmend.core.graph import op_histogram
from onnxmend.passes.folding.fold_batch_norm import FoldBatchNorm
from onnxmend.passes.infra.base import PassContext
from onnxmend.passes.norms.epsilons import norm_epsilons
from onnxmend.passes.norms.fuse_group_norm import FuseGroupNorm
from onnxmend.passes.norms.fuse_layer_norm import FuseLayerNorm
from tests.builders import candidates, run_passes

pytest.importorskip("tensorflow")


@pytest.mark.slow
def test_convnext_tiny_ends_with_23_layer_norms() -> None:
    from onnxmend.exporters.keras.source import export_keras_source
    from onnxmend.exporters.options import ExportOptions

    raw = export_keras_source("keras:ConvNeXtTiny", ExportOptions()).model
    assert candidates(raw, FuseLayerNorm()).count == 23
    passes = [FoldBatchNorm(), FuseLayerNorm(), FuseGroupNorm()]
    fixed, report = run_passes(raw, passes, PassContext(opset=17, framework="keras"), verify=True)
    ops = op_histogram(fixed)
    assert not report.rejected
    assert (ops.get("LayerNormalization"), ops.get("ReduceMean", 0), ops.get("Sqrt", 0), ops.get("Reciprocal", 0)) == (23, 0, 0, 0)
    assert all(row["differs"] and row["epsilon"] < 2e-6 for row in norm_epsilons(fixed, "keras"))
