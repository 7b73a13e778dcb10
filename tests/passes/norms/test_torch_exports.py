"""fuse-layer-norm on real torch exporter output: the legacy TorchScript spelling fuses, dynamo's is already fused."""

from __future__ import annotations

import pytest

from onnxmend.passes.norms.fuse_layer_norm import FuseLayerNorm
from tests.builders import apply, assert_same, ops
from tests.builders.norms import converted_to, torch_export

torch = pytest.importorskip("torch")


@pytest.mark.parametrize("normalized, opset", [((6,), 13), ((4, 5, 6), 16)])
def test_legacy_layer_norm(normalized: tuple[int, ...], opset: int) -> None:
    model = converted_to(torch_export(torch.nn.LayerNorm(list(normalized)), (2, 4, 5, 6), opset, dynamo=False), 17)
    assert "LayerNormalization" not in ops(model)
    out, result = apply(model, FuseLayerNorm())
    assert result.changed == 1 and ops(out) == ["LayerNormalization"]
    assert_same(model, out, atol=1e-5)


def test_dynamo_layer_norm_is_already_fused() -> None:
    model = torch_export(torch.nn.LayerNorm([6]), (2, 4, 6), 18, dynamo=True)
    out, result = apply(model, FuseLayerNorm())
    assert result.changed == 0 and ops(out) == ["LayerNormalization"]
