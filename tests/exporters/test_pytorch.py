"""The PyTorch exporter: factory forms, .pt2, both torch.onnx exporters, dynamic batch, bad input."""

from __future__ import annotations

import collections
import textwrap

import numpy as np
import pytest
import torch

from onnxmend.core.errors import BadSourceError, OnnxmendError
from onnxmend.exporters import ExportOptions, export, parse_input_arg
from onnxmend.runtime.compare import Comparator
from onnxmend.runtime.inputs import synthesize
from onnxmend.runtime.runners import source_runner
from onnxmend.runtime.session import create_session

MODEL_PY = textwrap.dedent('''
    import torch
    import torch.nn.functional as F

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3, stride=2)
            self.bn = torch.nn.BatchNorm2d(8)
            self.example_inputs = (torch.randn(1, 3, 17, 17),)

        def forward(self, image):
            x = F.pad(image, (0, 1, 0, 1))  # TF "same" for stride 2 on an odd size
            return torch.relu(self.bn(self.conv(x))).mean((2, 3))

    def make():
        torch.manual_seed(0)
        net = Net()
        net.bn.running_mean.uniform_(-1, 1)
        net.bn.running_var.uniform_(0.5, 2)
        return net

    def no_examples():
        net = make()
        del net.example_inputs
        return net

    def not_a_module():
        return 42

    def raises():
        raise RuntimeError("boom")
''')


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("src") / "net.py"
    path.write_text(MODEL_PY)
    return path


def _check_parity(exported, batch: int = 1):
    feeds = synthesize(exported.inputs, seed=0, batch=batch)
    ref = source_runner(exported).run(feeds)
    out = create_session(exported.model, provider="cpu", opt_level="disable").run(feeds)
    comparison = Comparator().compare(ref, out)
    assert comparison.verdict == "pass", comparison.to_json()
    return comparison


@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
def test_file_factory_exports_and_matches_with_each_exporter(model_file, exporter):
    exported = export(f"{model_file}:make", ExportOptions(torch_exporter=exporter))
    assert exported.framework == "torch"
    assert exporter in exported.exporter
    assert [s.name for s in exported.inputs] == ["image"]
    assert exported.inputs[0].shape == (1, 3, 17, 17) and exported.inputs[0].layout == "NCHW"
    _check_parity(exported)


def test_dynamo_graph_is_cleaner_than_legacy(model_file):
    dynamo = export(f"{model_file}:make", ExportOptions())
    legacy = export(f"{model_file}:make", ExportOptions(torch_exporter="legacy"))
    ops_d = collections.Counter(n.op_type for n in dynamo.model.graph.node)
    ops_l = collections.Counter(n.op_type for n in legacy.model.graph.node)
    assert ops_d["Pad"] == 0 and ops_l["Pad"] == 1
    assert sum(ops_d.values()) < sum(ops_l.values())
    assert any("opset 18" in n for n in dynamo.notes)
    assert legacy.model.opset_import[0].version == 17


@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
def test_dynamic_batch_runs_at_batch_three(model_file, exporter):
    exported = export(f"{model_file}:make", ExportOptions(dynamic_batch=True, torch_exporter=exporter))
    assert exported.inputs[0].shape[0] == "batch"
    dim = exported.model.graph.input[0].type.tensor_type.shape.dim[0]
    assert not dim.HasField("dim_value")
    _check_parity(exported, batch=3)


def test_input_flag_overrides_example_inputs(model_file):
    exported = export(f"{model_file}:no_examples", ExportOptions(inputs=(parse_input_arg("img:2x3x9x9"),)))
    assert exported.inputs[0].name == "img" and exported.inputs[0].shape == (2, 3, 9, 9)
    _check_parity(exported)


def test_module_factory_form(model_file, monkeypatch):
    monkeypatch.syspath_prepend(str(model_file.parent))
    exported = export("torch:net:make", ExportOptions(torch_exporter="legacy"))
    _check_parity(exported)


def test_pt2_program(model_file, tmp_path):
    from onnxmend.exporters.pytorch.factory import build_module

    module = build_module(f"{model_file}:make").eval()
    program = torch.export.export(module, module.example_inputs)
    path = tmp_path / "net.pt2"
    torch.export.save(program, str(path))
    exported = export(str(path), ExportOptions())
    assert exported.inputs[0].name == "image"
    _check_parity(exported)


@pytest.mark.parametrize(
    "source, message",
    [
        ("{dir}/net.py:not_a_module", "returned a int, not a torch.nn.Module"),
        ("{dir}/net.py:raises", "raised RuntimeError: boom"),
        ("{dir}/net.py:missing", "has no callable named 'missing'"),
        ("{dir}/absent.py:make", "does not exist"),
        ("torch:no_such_module_xyz:make", "Cannot import module"),
        ("torch:justone", "should look like torch:package.module:factory"),
        ("{dir}/net.py:no_examples", "no example_inputs"),
    ],
)
def test_bad_torch_sources_raise_one_sentence(model_file, source, message):
    with pytest.raises(OnnxmendError, match=message):
        export(source.format(dir=model_file.parent), ExportOptions())


def test_truncated_pt2_is_rejected(tmp_path):
    path = tmp_path / "broken.pt2"
    path.write_bytes(b"not a zip")
    with pytest.raises(BadSourceError, match="not a torch.export program"):
        export(str(path), ExportOptions())


def test_parse_input_arg_forms():
    assert parse_input_arg("x:1x3x224x224").shape == (1, 3, 224, 224)
    arg = parse_input_arg("ids:1x?:int64")
    assert arg.shape == (1, None) and arg.dtype == "int64"
    for bad in ("x", "x:1xax3", "x:0x3", "x:1x3:complex"):
        with pytest.raises(OnnxmendError):
            parse_input_arg(bad)


def test_source_runner_returns_numpy_by_onnx_output_name(model_file):
    exported = export(f"{model_file}:make", ExportOptions(torch_exporter="legacy"))
    out = source_runner(exported).run(synthesize(exported.inputs))
    assert list(out) == [o.name for o in exported.model.graph.output]
    assert isinstance(out["output"], np.ndarray) and out["output"].shape == (1, 8)
