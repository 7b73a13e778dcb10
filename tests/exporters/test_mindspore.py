"""The MindSpore source: Cell factories and zoo twins exported with mindspore.export in the MindSpore worker,
the pad-order bug corrected (raw vs corrected shapes, proven by parity against MindSpore), static shapes.

The pad correction itself is tested on hand-made graphs and needs no MindSpore; the rest skips without
the `mindspore` extra. MindSpore is never imported into the test process.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from onnxmend.core.deps import available
from onnxmend.exporters.mindspore.pads import correct_pads, output_shapes

needs_mindspore = pytest.mark.skipif(not available("mindspore"), reason="needs onnxmend's `mindspore` extra")

NET = textwrap.dedent('''
    import numpy as np
    from mindspore import nn

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, pad_mode="pad", padding=(1, 2, 0, 3), has_bias=True)
            self.bn = nn.BatchNorm2d(8, momentum=0.9)
            self.relu = nn.ReLU()

        def construct(self, x):
            return self.relu(self.bn(self.conv(x)))

    def make():
        net = Net()
        net.example_inputs = (np.zeros((1, 3, 16, 16), np.float32),)
        return net
''')


def conv_model(pads: list[int]) -> onnx.ModelProto:
    w = helper.make_tensor("conv.weight", TensorProto.FLOAT, (8, 3, 3, 3), np.ones(8 * 27, np.float32))
    node = helper.make_node("Conv", ["x", "conv.weight"], ["y"], "1Conv", kernel_shape=[3, 3], pads=pads)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, (1, 3, 16, 16))],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [w])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 11)])


def test_pads_written_in_mindspore_order_are_put_in_onnx_order() -> None:
    model = conv_model([1, 2, 0, 3])  # what mindspore.export writes for padding=(1, 2, 0, 3)
    assert output_shapes(model) == {"y": (1, 8, 15, 19)}
    (fix,) = correct_pads(model, {"conv.weight": (1, 2, 0, 3)})
    assert (fix.written, fix.corrected) == ((1, 2, 0, 3), (1, 0, 2, 3))
    assert list(model.graph.node[0].attribute[-1].ints) == [1, 0, 2, 3]
    assert output_shapes(model) == {"y": (1, 8, 17, 17)}  # (16 + 1 + 2 - 3) + 1, (16 + 0 + 3 - 3) + 1
    assert correct_pads(model, {"conv.weight": (1, 2, 0, 3)}) == []  # idempotent: now in ONNX order


@pytest.mark.parametrize("pads, padding, why", [
    ([1, 1, 1, 1], (1, 1, 1, 1), "symmetric: both orders agree"),
    ([1, 0, 2, 3], (1, 2, 0, 3), "already in ONNX order (a MindSpore without the bug)"),
    ([1, 2, 0, 3], None, "not a pad_mode='pad' Conv2d of the Cell"),
])
def test_pads_that_must_not_change(pads: list[int], padding, why: str) -> None:
    model = conv_model(pads)
    explicit = {"conv.weight": padding} if padding else {}
    assert correct_pads(model, explicit) == [], why
    assert list(model.graph.node[0].attribute[-1].ints) == pads


@needs_mindspore
def test_asymmetric_explicit_pads_are_caught_corrected_and_pass_parity(tmp_path: Path) -> None:
    from onnxmend.flows.convert import convert

    path = tmp_path / "net.py"
    path.write_text(NET)
    result = convert(f"{path}:make", tmp_path / "out")
    assert result.validation.verdict == "pass", result.validation.comparison.failures
    assert result.raw_validation.verdict == "pass"  # the raw export is already corrected
    assert result.validation.comparison.worst_max_abs_scaled <= 1e-4
    note = next(n for n in result.export.notes if "pads" in n)
    assert "conv.weight [1, 2, 0, 3] → [1, 0, 2, 3]" in note
    assert "1x8x15x19 as exported, 1x8x17x17 corrected (MindSpore: 1x8x17x17)" in note
    assert any("static shapes only: x 1x3x16x16" in n for n in result.export.notes)
    assert result.export.exporter.startswith("mindspore.export 2.")


@needs_mindspore
def test_uncorrected_export_mismatches_mindspore(tmp_path: Path) -> None:
    """The proof that the correction is needed: the same export with its pads put back as MindSpore
    wrote them computes something else, on the same Convs, against the same reference."""
    from onnxmend.exporters import export
    from onnxmend.exporters.options import ExportOptions
    from onnxmend.runtime.validate import validate

    exported = export("zoo:tf-same-conv-mindspore-pads", ExportOptions())
    note = next(n for n in exported.notes if "pads" in n)
    assert "1x16x7x8 as exported, 1x16x8x8 corrected (MindSpore: 1x16x8x8)" in note
    assert validate(exported.model, exported).verdict == "pass"
    broken = onnx.ModelProto()
    broken.CopyFrom(exported.model)
    for node in broken.graph.node:
        for attr in node.attribute:
            if attr.name == "pads":
                top, left, bottom, right = attr.ints
                attr.ints[:] = [top, bottom, left, right]  # back to what mindspore.export wrote
    assert validate(broken, exported).verdict == "mismatch"


@needs_mindspore
@pytest.mark.parametrize("name", ["tf-same-conv-mindspore", "tf-same-conv-mindspore-pads", "bn-dropout-mindspore"])
def test_zoo_twins_convert_fix_and_validate(name: str, tmp_path: Path) -> None:
    from onnxmend.flows.convert import convert

    result = convert(f"zoo:{name}", tmp_path / "out")
    assert result.validation.verdict == "pass", result.validation.comparison.failures
    assert result.after.ops.get("Dropout", 0) == 0


@needs_mindspore
def test_dynamic_batch_is_refused_in_one_sentence(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "onnxmend", "convert", "zoo:bn-dropout-mindspore", "--dynamic-batch",
                           "-o", str(tmp_path / "o")], capture_output=True, text=True)
    assert done.returncode == 2 and "static shapes only" in done.stderr and "Traceback" not in done.stderr


@needs_mindspore
def test_source_runner_captures_sub_cells() -> None:
    from onnxmend.exporters import export
    from onnxmend.exporters.options import ExportOptions
    from onnxmend.runtime.inputs import synthesize
    from onnxmend.runtime.runners import source_runner

    exported = export("zoo:bn-dropout-mindspore", ExportOptions())
    runner = source_runner(exported)
    assert runner.framework == "mindspore" and "PyNative" in runner.label
    captured = runner.capture(synthesize(exported.inputs), ["0", "1"])
    assert captured["0"].shape == captured["1"].shape == (1, 8, 16, 16)


@needs_mindspore
def test_bn_momentum_is_one_minus_torchs() -> None:
    """One training step: MindSpore momentum 0.9 keeps the statistics torch's 0.1 keeps; copying 0.1 does not."""
    pytest.importorskip("torch")
    from onnxmend.exporters.remote import framework_worker
    from onnxmend.models import dropout_bn

    worker = framework_worker("mindspore")
    target = "onnxmend.models.dropout_bn:mindspore_moving_mean"
    expected = dropout_bn.torch_moving_mean(0)
    step = dict(actor="MindSpore", doing="a training step", timeout_s=300, seed=0)
    converted = worker.call(target, momentum=0.9, **step)
    copied = worker.call(target, momentum=0.1, **step)
    np.testing.assert_allclose(converted, expected, rtol=1e-4, atol=1e-5)
    assert np.abs(copied - expected).max() > 1e-2
