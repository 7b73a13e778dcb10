"""fold-dynamic-pad: torch legacy TF-"same" pad chains become constant pads."""

from __future__ import annotations

import math

import numpy as np
import onnx
import pytest
from onnx import helper

from onnxmend.core.graph import op_histogram
from onnxmend.passes.cleanup.eliminate_dead_nodes import EliminateDeadNodes
from onnxmend.passes.cleanup.fold_constants import FoldConstants
from onnxmend.passes.padding.fold_dynamic_pad import FoldDynamicPad
from onnxmend.passes.padding.fold_pad import FoldPad
from onnxmend.passes.padding.resolve_auto_pad import ResolveAutoPad
from tests.builders import candidates
from tests.builders.padding import (
    assert_skipped,
    attr,
    changed,
    feeds_for,
    ints,
    ort,
    pipeline,
    weight,
    x_model,
)


def _tf_same_net(torch):
    nn, functional = torch.nn, torch.nn.functional

    def same_pad(x, k, s):
        ih, iw = x.shape[-2:]
        ph = max((math.ceil(ih / s) - 1) * s + k - ih, 0)
        pw = max((math.ceil(iw / s) - 1) * s + k - iw, 0)
        return functional.pad(x, [pw // 2, pw - pw // 2, ph // 2, ph - ph // 2])

    class TFSameNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.c1, self.c2 = nn.Conv2d(3, 8, 3, 2), nn.Conv2d(8, 8, 3, 1)
            self.example_inputs = (torch.randn(1, 3, 15, 16),)

        def forward(self, x):
            return self.c2(same_pad(torch.relu(self.c1(same_pad(x, 3, 2))), 3, 1))

    return TFSameNet()


def _explicit_twin() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Conv", ["x", "w1"], ["a"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 0, 1, 1]),
        helper.make_node("Relu", ["a"], ["r"]),
        helper.make_node("Conv", ["r", "w2"], ["y"], kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
    ]
    return x_model(nodes, [1, 3, 15, 16], [weight("w1", [8, 3, 3, 3]), weight("w2", [8, 8, 3, 3])])


@pytest.mark.parametrize("dynamic_batch", [False, True])
def test_fold_dynamic_pad_torch_legacy_chain(dynamic_batch):
    torch = pytest.importorskip("torch")
    from onnxmend.exporters.options import ExportOptions
    from onnxmend.exporters.pytorch.export import export_module

    options = ExportOptions(torch_exporter="legacy", dynamic_batch=dynamic_batch)
    model = export_module(_tf_same_net(torch), "t", options).model
    assert candidates(model, FoldDynamicPad()).count == 2
    passes = [FoldConstants(), FoldDynamicPad(), ResolveAutoPad(), FoldPad(), EliminateDeadNodes()]
    out, report = pipeline(model, *passes, verify=True)
    histogram = op_histogram(out)
    assert report.rejected == []
    assert histogram.get("Pad", 0) == 0 and histogram.get("Shape", 0) == 0
    assert histogram == op_histogram(_explicit_twin()) == {"Conv": 2, "Relu": 1}
    convs = [list(attr(n, "pads")) for n in out.graph.node if n.op_type == "Conv"]
    assert convs == [[1, 0, 1, 1], [1, 1, 1, 1]]
    feeds = feeds_for([2 if dynamic_batch else 1, 3, 15, 16])
    np.testing.assert_allclose(ort(out, feeds), ort(model, feeds), rtol=1e-5, atol=1e-5)
    _, again = pipeline(out, *passes)
    assert changed(again) == 0


def _batch_reading_pad(read_index: int) -> onnx.ModelProto:
    # pads = [0, 0, 0, 0, 0, 0, d, d] with d = shape(x)[read_index] - 7
    nodes = [
        helper.make_node("Shape", ["x"], ["s"]),
        helper.make_node("Gather", ["s", "idx"], ["d0"], axis=0),
        helper.make_node("Sub", ["d0", "seven"], ["d"]),
        helper.make_node("Concat", ["zeros", "d", "d"], ["pads"], axis=0),
        helper.make_node("Pad", ["x", "pads"], ["p"]),
        helper.make_node("Conv", ["p", "w"], ["y"], kernel_shape=[3, 3]),
    ]
    inits = [ints("idx", [read_index]), ints("seven", [7]), ints("zeros", [0] * 6), weight("w", [4, 3, 3, 3])]
    return x_model(nodes, ["N", 3, 8, 8], inits)


def test_fold_dynamic_pad_reads_static_dims_only():
    model = _batch_reading_pad(read_index=3)  # W = 8 → one row and one column at the end
    out, report = pipeline(model, FoldDynamicPad(), FoldPad())
    assert op_histogram(out) == {"Conv": 1}
    assert changed(report) == 2
    feeds = feeds_for([2, 3, 8, 8])
    np.testing.assert_array_equal(ort(out, feeds), ort(model, feeds))

    _, report = pipeline(_batch_reading_pad(read_index=0), FoldDynamicPad())
    assert changed(report) == 0
    assert_skipped(report, "fold-dynamic-pad", r"read a dynamic dimension of 'x'")
