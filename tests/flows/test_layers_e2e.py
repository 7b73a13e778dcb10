"""``validate --layers`` and ``diff`` end to end on small torch nets (fast) and the zoo's Keras ports (slow):
exit codes 0/1/2, the first wrong layer named with its differing attribute or weight, the reports and the
plot written, both torch exporters mapped."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

pytest.importorskip("torch")

NET = textwrap.dedent('''
    import torch
    class Net(torch.nn.Module):
        def __init__(self, eps=1e-5, size=12):
            super().__init__()
            torch.manual_seed(0)
            self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.nn.BatchNorm2d(8, eps=eps), torch.nn.ReLU())
            self.head = torch.nn.Conv2d(8, 4, 1)
            with torch.no_grad():
                self.stem[1].running_var.uniform_(0.001, 0.01)
                self.stem[1].running_mean.uniform_(-0.5, 0.5)
            self.example_inputs = (torch.randn(1, 3, size, size),)
        def forward(self, x):
            return self.head(self.stem(x))
    def net():
        return Net().eval()
    def keras_eps():
        return Net(eps=1e-3).eval()
    def other_size():
        return Net(size=10).eval()
''')


def onnxmend(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "onnxmend", *args], capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("layers")
    (path / "net.py").write_text(NET)
    for exporter in ("dynamo", "legacy"):
        result = onnxmend("convert", f"{path}/net.py:net", "-o", str(path / exporter), "--torch-exporter", exporter)
        assert result.returncode == 0, result.stdout + result.stderr
    return path


@pytest.mark.parametrize("exporter", ["dynamo", "legacy"])
def test_every_layer_passes_and_every_module_with_parameters_is_mapped(work: Path, exporter: str) -> None:
    out = work / f"ok-{exporter}"
    result = onnxmend("validate", str(work / exporter / "model.onnx"), "--source", f"{work}/net.py:net", "--layers",
                      "-o", str(out), "--torch-exporter", exporter)
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"] == "pass" and report["map"]["coverage"] == 1.0
    assert [p["label"] for p in report["points"]] == ["stem.1 (+stem.0)", "stem.2", "head"]
    assert (out / "layers.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "## Per layer" in (out / "report.md").read_text()


def test_a_perturbed_conv_is_named_with_its_weights(work: Path, tmp_path: Path) -> None:
    model = onnx.load(str(work / "dynamo" / "model.onnx"))
    head = [n for n in model.graph.node if n.op_type == "Conv"][-1]  # the 1x1 head, after the stem
    init = next(t for t in model.graph.initializer if t.name == head.input[1])
    weight = numpy_helper.to_array(init) + np.random.default_rng(0).normal(0, 0.05, init.dims).astype(np.float32)
    init.CopyFrom(numpy_helper.from_array(weight, init.name))
    onnx.save(model, str(tmp_path / "bad.onnx"))
    result = onnxmend("validate", str(tmp_path / "bad.onnx"), "--source", f"{work}/net.py:net", "--layers", "--json")
    assert result.returncode == 1, result.stderr
    layers = json.loads(result.stdout)["layers"]
    assert layers["first_wrong"] == "head" and layers["detail"]["weights"]["summary"].startswith("differ")


def test_a_port_with_another_epsilon_names_the_bn_and_the_epsilons(work: Path) -> None:
    result = onnxmend("validate", str(work / "dynamo" / "model.onnx"), "--source", f"{work}/net.py:keras_eps",
                      "--layers", "--json")
    assert result.returncode == 1, result.stderr
    layers = json.loads(result.stdout)["layers"]
    assert layers["first_wrong"] == "stem.1 (+stem.0)"
    assert layers["cause"]["differs"]["epsilon"] == [pytest.approx(1e-3), pytest.approx(1e-5)]


def test_diff_of_two_ports_names_the_bn_and_exits_one(work: Path) -> None:
    result = onnxmend("diff", f"{work}/net.py:keras_eps", f"{work}/net.py:net", "-o", str(work / "diff"))
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads((work / "diff" / "report.json").read_text())
    assert report["first_wrong"].startswith("stem.1 ↔ stem.1")
    assert "epsilon 0.001 vs 1e-05" in report["headline"]
    assert (work / "diff" / "layers.png").exists()


def test_interfaces_that_cannot_be_matched_are_bad_input(work: Path) -> None:
    result = onnxmend("validate", str(work / "dynamo" / "model.onnx"), "--source", f"{work}/net.py:other_size", "--layers")
    assert result.returncode == 2
    assert "matches no layout" in result.stderr and "Traceback" not in result.stderr


KERAS_PORTS = [
    ("tf-same-conv-keras", "tf-same-conv-torch-naive", "conv1", "pads"),
    ("bn-stack-keras", "bn-stack-torch", "bn0 (+conv0)", "epsilon"),
    ("layernorm-last-keras", "layernorm-last-torch-wrong-axes", "layer_norm", "axes"),
    ("depthwise-keras", "depthwise-torch-transposed", "depthwise", "weights"),
]


@pytest.mark.slow
@pytest.mark.parametrize(("original", "port", "layer", "what"), KERAS_PORTS)
def test_validate_layers_names_the_broken_layer_of_each_keras_port(tmp_path: Path, original: str, port: str,
                                                                    layer: str, what: str) -> None:
    pytest.importorskip("tensorflow")
    assert onnxmend("convert", f"zoo:{port}", "-o", str(tmp_path)).returncode == 0
    result = onnxmend("validate", str(tmp_path / "model.onnx"), "--source", f"zoo:{original}", "--layers", "--json")
    assert result.returncode == 1, result.stderr
    layers = json.loads(result.stdout)["layers"]
    assert layers["first_wrong"] == layer
    shown = layers["cause"] or layers["detail"]
    assert (shown["weights"]["summary"].startswith("equal after swapping kh and kw") if what == "weights"
            else what in shown["differs"])


def test_convert_runs_the_layer_report_when_parity_fails(work: Path, tmp_path: Path, monkeypatch) -> None:
    from onnxmend.exporters.options import ExportOptions
    from onnxmend.flows import convert as convert_flow

    fix = convert_flow._fix

    def broken_fix(*args, **kwargs):  # the fixed graph gets a corrupted head, so parity fails
        model, *rest = fix(*args, **kwargs)
        head = [n for n in model.graph.node if n.op_type == "Conv"][-1]
        init = next(t for t in model.graph.initializer if t.name == head.input[1])
        init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) * 1.5, init.name))
        return (model, *rest)

    monkeypatch.setattr(convert_flow, "_fix", broken_fix)
    options = convert_flow.ConvertOptions(export=ExportOptions(torch_exporter="legacy"))
    result = convert_flow.convert(f"{work}/net.py:net", tmp_path / "out", options)
    assert result.exit_code == 1 and result.layers is not None
    assert result.layers.first_wrong == "head"
    assert {"layers.json", "layers.md", "layers.png"} <= {p.name for p in (tmp_path / "out").iterdir()}
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["layers"]["first_wrong"] == "head" and "First diverging layer" in (tmp_path / "out" / "report.md").read_text()
