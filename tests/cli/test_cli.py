"""The CLI end to end on small models: exit codes, artifacts, bad input, the input never modified."""

from __future__ import annotations

import hashlib
import json
import textwrap
from pathlib import Path

import onnx
import pytest

from tests.builders import conv_relu_model
from tests.builders.cli import onnxmend

NET = textwrap.dedent('''
    import torch
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.example_inputs = (torch.randn(1, 3, 8, 8),)
        def forward(self, x):
            return torch.tanh(self.conv(x))
    class Zero(Net):
        def forward(self, x):
            return self.conv(x) * 0.0
    def make():
        return Net()
    def zero():
        return Zero()
''')




@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("cli")
    (path / "net.py").write_text(NET)
    onnx.save(conv_relu_model(), str(path / "in.onnx"))
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_convert_torch_file_writes_artifacts_and_exits_zero(workdir):
    out = workdir / "out"
    result = onnxmend("convert", f"{workdir}/net.py:make", "-o", str(out), "--torch-exporter", "legacy")
    assert result.returncode == 0, result.stderr
    assert "PASS" in result.stdout
    assert {p.name for p in out.iterdir()} == {"raw.onnx", "model.onnx", "report.json", "report.md", ".onnxmend"}
    report = json.loads((out / "report.json").read_text())
    assert report["verdict"] == "pass" and report["framework"] == "torch"
    assert report["validation"]["outputs"][0]["max_abs"] < 1e-5
    assert "Verdict: PASS" in (out / "report.md").read_text()
    assert not list(out.glob(".*.tmp"))


def test_degenerate_reference_is_not_called_a_pass(workdir):
    result = onnxmend("convert", f"{workdir}/net.py:zero", "-o", str(workdir / "zero"), "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["verdict"] == "degenerate"
    assert "near zero" in report["validation"]["outputs"][0]["reason"]


def test_convert_onnx_file_never_modifies_input(workdir):
    src = workdir / "in.onnx"
    before = sha(src)
    result = onnxmend("convert", str(src), "-o", str(workdir / "from_onnx"), "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["framework"] == "onnx" and report["verdict"] == "pass"
    assert report["after"]["nodes"] < report["before"]["nodes"]
    assert sha(src) == before


def test_convert_refuses_to_overwrite_its_input(workdir, tmp_path):
    src = tmp_path / "model.onnx"
    onnx.save(conv_relu_model(), str(src))
    before = sha(src)
    result = onnxmend("convert", str(src), "-o", str(tmp_path))
    assert result.returncode == 2 and "never modifies its input" in result.stderr
    assert sha(src) == before


def test_fix_with_passes_and_inspect_json(workdir):
    out = workdir / "fixed.onnx"
    result = onnxmend("fix", str(workdir / "in.onnx"), "-o", str(out), "--passes", "remove-identity", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["applied"][0]["pass"] == "remove-identity"
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert "Identity" not in ops and "Dropout" not in ops
    inspected = json.loads(onnxmend("inspect", str(out), "--json").stdout)
    assert inspected["opset"] == 17 and inspected["ops"]["Conv"] == 1


def test_validate_against_source(workdir):
    out = workdir / "val"
    assert onnxmend("convert", f"{workdir}/net.py:make", "-o", str(out), "--torch-exporter", "legacy").returncode == 0
    result = onnxmend("validate", str(out / "model.onnx"), "--source", f"{workdir}/net.py:make", "--torch-exporter", "legacy")
    assert result.returncode == 0, result.stderr
    assert "PASS" in result.stdout


def test_passes_lists_catalogue():
    data = json.loads(onnxmend("passes", "--json").stdout)
    names = [p["name"] for p in data["passes"]]
    assert "fold-constants" in names and set(data["presets"]["fix"]) <= set(names)


@pytest.mark.parametrize(
    "args, message",
    [
        (["convert", "/no/such/model.onnx"], "does not exist"),
        (["convert", "what:ever"], "Unknown source"),
        (["convert", "{dir}"], "not a SavedModel"),
        (["convert", "{dir}/truncated.onnx"], "not a readable ONNX model"),
        (["convert", "{dir}/notes.txt"], "unknown file type"),
        (["convert", "{dir}/net.py:make", "--input", "x:1x3xQ"], "Cannot parse input"),
        (["convert", "{dir}/in.onnx", "--passes", "bogus"], "Unknown pass bogus"),
        (["fix", "{dir}/in.onnx", "-o", "{dir}/in.onnx"], "never overwrites its input"),
        (["inspect", "{dir}/truncated.onnx"], "not a readable ONNX model"),
        (["convert", "{dir}/in.onnx", "--opset", "3"], "Invalid value"),
        (["convert", "{dir}/in.onnx", "--provider", "tpu"], "Invalid value"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_two(workdir, args, message):
    (workdir / "truncated.onnx").write_bytes((workdir / "in.onnx").read_bytes()[:40])
    (workdir / "notes.txt").write_text("hello")
    result = onnxmend(*[a.format(dir=workdir) for a in args])
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("layout, transposes, layer_norms, input_shape", [
    ("auto", 2, 1, [1, 16, 8, 8]),  # NCHW I/O, the channel LayerNorm fused inside one Transpose pair
    ("nchw", 0, 0, [1, 16, 8, 8]),  # pinned: no Transpose, so the channel LayerNorm stays decomposed
    ("keep", 2, 1, [1, 8, 8, 16]),  # NHWC I/O: one Transpose at the input, one at the output
])
def test_convert_layout_choices_on_a_keras_channel_layer_norm(tmp_path, layout, transposes, layer_norms, input_shape):
    out = tmp_path / layout
    result = onnxmend("convert", "zoo:layernorm-last-keras", "-o", str(out), "--layout", layout, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "pass" and report["layout_choice"] == layout
    ops = report["after"]["ops"]
    assert ops.get("Transpose", 0) == transposes and ops.get("LayerNormalization", 0) == layer_norms
    assert report["after"]["inputs"][0]["shape"] == input_shape
    if layout == "nchw":
        (skip,) = report["passes"]["skipped"]["fuse-layer-norm"]
        assert "pinned layout allows no new Transposes" in skip["reason"]


def test_portable_preset_spells_a_keras_layer_norm_in_its_shortest_form(tmp_path):
    result = onnxmend("convert", "zoo:layernorm-last-keras", "-o", str(tmp_path / "p"), "--preset", "portable", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["verdict"] == "pass"
    # tf2onnx's 16 nodes (Reciprocal, Neg, γ folded into the statistics) → Conv + the 9-node spelling.
    assert report["after"]["ops"] == {"Conv": 1, "ReduceMean": 2, "Sub": 1, "Mul": 2, "Add": 2, "Sqrt": 1, "Div": 1}
