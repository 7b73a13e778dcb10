"""inspect on graphs its readers did not expect: a reader that raises costs its finding, never the inspection;
a graph graphsurgeon cannot import is one sentence."""

from __future__ import annotations

import onnx
import pytest

from onnxmend.core.errors import OnnxmendError
from onnxmend.runtime import inspect as inspection
from tests.builders import conv_relu_model


def test_a_reader_that_raises_costs_its_finding_not_the_inspection(monkeypatch) -> None:
    def broken(*args, **kwargs):
        raise TypeError("'Graph' object is not iterable")

    monkeypatch.setattr(inspection, "transpose_findings", broken)
    monkeypatch.setattr(inspection, "norm_epsilons", broken)
    result = inspection.inspect_model(conv_relu_model(), preset="fix")
    notes = [f.message for f in result.findings if f.key == "not_computed"]
    assert notes == ["norm epsilons not computed: its reader raised TypeError: 'Graph' object is not iterable",
                     "layout findings not computed: its reader raised TypeError: 'Graph' object is not iterable"]
    assert result.ops == {"Identity": 1, "Conv": 1, "Dropout": 1, "Add": 1, "Relu": 1, "Constant": 1}
    assert result.candidates and result.to_json()["findings"]


def test_a_graph_graphsurgeon_cannot_import_is_one_sentence() -> None:
    model = conv_relu_model()
    model.graph.value_info.add().CopyFrom(onnx.helper.make_tensor_value_info("c", 33, [1]))  # no such dtype
    with pytest.raises(OnnxmendError, match=r"^The graph cannot be read by onnx-graphsurgeon \(KeyError: 33\)\.$"):
        inspection.inspect_model(model)
