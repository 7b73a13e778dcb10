"""The fixed graph is never larger than onnxsim's output of the same raw export (the design's size rule),
per model: the held-in set of tests/builders/peers.py (one graph per generic-cleanup pattern), the zoo and
the README's four keras.applications models. What is counted is said in tests/builders/peers.py; the
numbers are bench/peer_sizes.py's table.

The ONNX-built graphs, the torch legacy exports and three small zoo models run in the fast suite; the
dynamo-exported held-ins (8–15 s to export), the rest of the zoo and the keras apps are slow.
"""

from __future__ import annotations

import pytest

from onnxmend.core.errors import MissingDependencyError
from onnxmend.models import zoo_names
from tests.builders.peers import HELD_IN, NEEDS_TORCH, compare

onnxsim = pytest.importorskip("onnxsim")

FAST_ZOO = {"tf-same-conv-torch", "vit-block-torch", "groupnorm1-torch", "detector-dynamic-onnx", "audio-reflect-onnx"}
SLOW_HELD_IN = {"held-in:squeeze-excite-dynamo", "held-in:transformer-dynamo"}
KERAS_APPS = ("MobileNetV2", "EfficientNetB0", "ResNet50", "ConvNeXtTiny")
# onnxsim 0.8.1 fuses hand-written multi-head attention into onnxruntime's com.microsoft Attention
# (18 nodes → 2 per block); onnxmend has no attention fusion, which is no generic cleanup.
NO_ATTENTION_FUSION = {"zoo:bert-encoder-torch"}


def _param(source: str, slow: bool):
    marks = [pytest.mark.slow] if slow else []
    if source in NO_ATTENTION_FUSION:
        marks.append(pytest.mark.xfail(reason="onnxsim fuses attention into com.microsoft Attention", strict=True))
    return pytest.param(source, marks=marks, id=source)


SOURCES = ([_param(n, n in SLOW_HELD_IN) for n in HELD_IN]
           + [_param(f"zoo:{n}", n not in FAST_ZOO) for n in zoo_names()]
           + [_param(f"keras:{n}", True) for n in KERAS_APPS])


def _raw(source: str):
    if source in HELD_IN:
        if source in NEEDS_TORCH:
            pytest.importorskip("torch")
        return HELD_IN[source]()
    from onnxmend.exporters import export

    try:
        return export(source).model
    except MissingDependencyError as exc:  # the zoo model's framework is not installed here
        pytest.skip(str(exc))


@pytest.mark.parametrize("source", SOURCES)
def test_fixed_graph_has_no_more_nodes_than_onnxsims(source: str) -> None:
    row = compare(source, _raw(source), peers=("onnxsim",))
    assert row.rejected == ()  # the gate accepted every rewrite
    assert row.fixed <= row.onnxsim, row
