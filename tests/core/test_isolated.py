"""Shape inference of untrusted graphs in the graph worker: shapes come back, inference errors are lenient
or strict as asked, a hang is one sentence, and the worker's memory limit grows with the model."""

from __future__ import annotations

import onnx
import pytest

from onnxmend.core import isolated
from onnxmend.core.worker import RemoteFailure, WorkerFailure
from tests.builders import conv_relu_model


def _unknown_output_shape() -> onnx.ModelProto:
    model = conv_relu_model()
    del model.graph.value_info[:]
    model.graph.output[0].type.tensor_type.ClearField("shape")
    return model


def test_inferred_shapes_come_back_from_the_worker() -> None:
    inferred = isolated.infer_shapes_isolated(_unknown_output_shape())
    assert [d.dim_value for d in inferred.graph.output[0].type.tensor_type.shape.dim] == [1, 4, 8, 8]
    assert {v.name for v in inferred.graph.value_info} >= {"c", "a"}


def _contradiction() -> onnx.ModelProto:
    model = conv_relu_model()
    model.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 5  # Relu of a 4-channel tensor
    return model


def test_an_inference_error_is_lenient_or_strict_as_asked() -> None:
    model = _contradiction()
    assert isolated.infer_shapes_isolated(model) == model  # as given
    with pytest.raises(RemoteFailure, match=r"^InferenceError: .*Inferred shape and existing shape differ"):
        isolated.infer_shapes_isolated(model, "the rewritten graph", strict=True)


def test_inference_that_does_not_finish_is_one_sentence() -> None:
    isolated.graph_worker(0).close()  # a child that has yet to start cannot answer within a millisecond
    with pytest.raises(WorkerFailure, match=r"^ONNX shape inference did not finish inferring the shapes of the input "
                                            r"graph within 0\.001 s; it was stopped$"):
        isolated.infer_shapes_isolated(conv_relu_model(), timeout_s=0.001)
    assert isolated.infer_shapes_isolated(_unknown_output_shape()).graph.value_info  # a fresh worker took over


def test_the_worker_is_replaced_by_a_larger_one_for_a_larger_model(monkeypatch) -> None:
    first = isolated.graph_worker(1000)
    assert isolated.graph_worker(2000) is first
    monkeypatch.setattr(isolated, "memory_limit_bytes", lambda: 64 << 30)
    bigger = isolated.graph_worker(1 << 30)
    assert bigger is not first and isolated._ASKED == 8 << 30
