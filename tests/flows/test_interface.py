"""Interface honesty: every change between the source's interface and the written model is listed with its
reason, and --keep-interface writes a model whose inputs and outputs are the source's."""

from __future__ import annotations

import textwrap

import numpy as np
import onnx
import pytest
from onnx import helper

from onnxmend.core.specs import output_specs_from_model, specs_from_model
from onnxmend.flows.convert import ConvertOptions, convert
from onnxmend.flows.fix import fix
from tests.builders import init, make_model, transpose, value

NET = textwrap.dedent('''
    import torch
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.norm = torch.nn.LayerNorm(8)
        def forward(self, x):
            return self.norm(torch.tanh(self.conv(x)))
    def make():
        return Net()
''')


def nhwc_graph():
    """tf2onnx's shape of a Keras conv: x[N,8,8,3] ─T─ Conv ─T─ y[N,8,8,4], the batch dynamic."""
    w = np.random.default_rng(0).standard_normal((4, 3, 1, 1)).astype(np.float32)
    nodes = [transpose("x", "xt", (0, 3, 1, 2)), helper.make_node("Conv", ["xt", "w"], ["c"]),
             transpose("c", "y", (0, 2, 3, 1))]
    return make_model(nodes, [value("x", ["N", 8, 8, 3])], [value("y", ["N", 8, 8, 4])], [init("w", w)])


def test_fix_with_layout_nchw_lists_both_layout_changes_and_keeps_the_dynamic_batch(tmp_path):
    onnx.save(nhwc_graph(), str(tmp_path / "in.onnx"))
    result = fix(tmp_path / "in.onnx", tmp_path / "out.onnx", layout="nchw")
    rows = [(c.kind, c.tensor, c.aspects) for c in result.interface]
    assert rows == [("input", "x", ("layout",)), ("output", "y", ("layout",))]
    assert result.interface[0].why.startswith("io-layout: NHWC → NCHW (--layout nchw;")
    from onnxmend.core.interface_diff import describe

    assert describe(result.interface[0].after) == "x float32 [N,3,8,8] NCHW"


def test_fix_keep_interface_refuses_the_layout_pass_with_its_reason(tmp_path):
    onnx.save(nhwc_graph(), str(tmp_path / "in.onnx"))
    result = fix(tmp_path / "in.onnx", tmp_path / "out.onnx", passes="io-layout,push-transposes", keep_interface=True)
    assert result.interface == [] and result.exit_code == 0
    assert result.pipeline.not_run["io-layout"] == "--keep-interface keeps the inputs' and outputs' layout"
    written = onnx.load(str(tmp_path / "out.onnx"))
    assert specs_from_model(written) == specs_from_model(nhwc_graph())


def test_a_torch_model_with_a_dynamic_batch_keeps_its_interface(tmp_path):
    pytest.importorskip("torch", reason="torch is not installed")
    (tmp_path / "net.py").write_text(NET)
    options = ConvertOptions(export=__import__("onnxmend.exporters", fromlist=["ExportOptions"]).ExportOptions(
        inputs=(), dynamic_batch=True))
    from onnxmend.exporters.options import ExportOptions, InputArg

    options = ConvertOptions(export=ExportOptions(inputs=(InputArg("x", (2, 3, 8, 8)),), dynamic_batch=True))
    result = convert(f"{tmp_path}/net.py:make", tmp_path / "out", options)
    assert result.validation.verdict == "pass" and result.interface == []
    (spec,) = specs_from_model(onnx.load(str(tmp_path / "out" / "model.onnx")))
    assert spec.name == "x" and not isinstance(spec.shape[0], int) and spec.shape[1:] == (3, 8, 8)
    assert result.to_json()["interface"] == []


keras = pytest.importorskip("keras", reason="TensorFlow/Keras is not installed")


def test_convert_of_a_keras_nhwc_model_states_the_layout_and_the_batch_it_fixed(tmp_path):
    result = convert("zoo:layernorm-last-keras", tmp_path / "out")
    by_tensor = {c.tensor: c for c in result.interface}
    change = by_tensor[result.export.inputs[0].name]
    assert change.aspects == ("layout", "static")
    assert change.before.shape[0] is None and change.before.layout == "NHWC"
    assert change.after.shape[0] == 1 and change.after.layout == "NCHW"
    assert "io-layout: NHWC → NCHW (--layout auto" in change.why and "exported with batch 1" in change.why
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Interface, source → model.onnx" in report and "exported with batch 1" in report


def test_keep_interface_gives_the_keras_source_interface_exactly(tmp_path):
    result = convert("zoo:layernorm-last-keras", tmp_path / "out", ConvertOptions(keep_interface=True))
    assert result.validation.verdict == "pass" and result.interface == [] and result.layout == "keep"
    written = onnx.load(str(tmp_path / "out" / "model.onnx"))
    source = [(s.name, s.dtype, tuple(d if isinstance(d, int) else None for d in s.shape))
              for s in result.export.declared_inputs]
    got = [(s.name, s.dtype, tuple(d if isinstance(d, int) else None for d in s.shape)) for s in specs_from_model(written)]
    assert got == source and source[0][2][0] is None  # the None batch stayed dynamic
    assert [o.name for o in output_specs_from_model(written)] == [o.name for o in result.export.declared_outputs]
