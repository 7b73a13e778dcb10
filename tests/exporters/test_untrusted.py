"""No code from a model file runs without --trust-source: crafted .pt2 archives, pickled .pt modules and
Keras Lambda layers are refused in one sentence (exit 2), and a canary file proves nothing ran."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from onnxmend.core.errors import BadSourceError
from onnxmend.exporters import ExportOptions, export

torch = pytest.importorskip("torch")


class Canary:
    """Unpickling this runs a shell command that creates ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self):
        return (os.system, (f"touch {self.path}",))


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = torch.nn.Linear(4, 3)

    def forward(self, x):
        return torch.relu(self.fc(x))


def _pt2(tmp_path: Path) -> Path:
    path = tmp_path / "net.pt2"
    torch.export.save(torch.export.export(Net().eval(), (torch.randn(2, 4),)), str(path))
    return path


def _rewrite(source: Path, target: Path, change) -> Path:
    """Copy the zip, letting ``change(relative_name, data)`` replace members (None drops one) or add some."""
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        root = src.namelist()[0].split("/")[0]
        for info in src.infolist():
            relative = info.filename.split("/", 1)[1]
            data = change(relative, src.read(info.filename))
            if data is not None:
                dst.writestr(info.filename, data)
        for relative, data in change.extra.items():
            dst.writestr(f"{root}/{relative}", data)
    return target


def _saved(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


def _sample_inputs_attack(canary):
    def change(relative, data):
        return _saved((Canary(canary),)) if relative.startswith("data/sample_inputs/") else data
    change.extra = {}
    return change


def _pickled_weight_attack(canary):
    def change(relative, data):
        if relative == "data/weights/model_weights_config.json":
            config = json.loads(data)
            config["config"]["fc.weight"]["use_pickle"] = True
            return json.dumps(config).encode()
        if relative == "data/weights/weight_0":
            return _saved(Canary(canary))
        return data
    change.extra = {}
    return change


def _custom_object_attack(canary):
    def change(relative, data):
        return data
    change.extra = {"data/constants/custom_obj_0": _saved(Canary(canary))}
    return change


def _compiled_code(canary):
    def change(relative, data):
        return data
    change.extra = {"data/aotinductor/model/model.so": b"\x7fELF not really"}
    return change


@pytest.mark.parametrize("attack, reason", [
    (_sample_inputs_attack, r"holds a pickle that is not plain tensors \(data/sample_inputs/model\.pt: it would import posix\.system\)"),
    (_pickled_weight_attack, r"holds a pickle that is not plain tensors \(data/weights/weight_0: it would import posix\.system\)"),
    (_custom_object_attack, r"holds a pickled custom object \(data/constants/custom_obj_0\)"),
    (_compiled_code, r"carries compiled or backend code \(data/aotinductor/model/model\.so\)"),
])
def test_crafted_pt2_is_refused_and_runs_nothing(tmp_path: Path, attack, reason: str) -> None:
    canary = tmp_path / "canary"
    crafted = _rewrite(_pt2(tmp_path), tmp_path / "crafted.pt2", attack(canary))
    with pytest.raises(BadSourceError, match=reason) as caught:
        export(str(crafted), ExportOptions())
    assert "pass --trust-source" in str(caught.value)
    assert not canary.exists()


def test_the_cli_refuses_with_one_sentence_and_exit_two_and_trusting_is_explicit(tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    crafted = _rewrite(_pt2(tmp_path), tmp_path / "crafted.pt2", _sample_inputs_attack(canary))
    command = [sys.executable, "-m", "onnxmend", "convert", str(crafted), "-o", str(tmp_path / "out")]
    refused = subprocess.run(command, capture_output=True, text=True)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert "--trust-source" in refused.stderr and not canary.exists()
    subprocess.run(command + ["--trust-source"], capture_output=True, text=True)
    assert canary.exists()  # with the flag the file's code runs: that is what trusting it means


def test_a_plain_pt2_still_converts(tmp_path: Path) -> None:
    exported = export(str(_pt2(tmp_path)), ExportOptions())
    assert [s.name for s in exported.inputs] == ["x"]


def test_pickled_torch_module_needs_trust_and_a_state_dict_needs_a_factory(tmp_path: Path) -> None:
    module_file, weights_file = tmp_path / "net.pt", tmp_path / "weights.pth"
    net = Net().eval()
    net.example_inputs = (torch.randn(2, 4),)
    torch.save(net, module_file)
    torch.save(net.state_dict(), weights_file)
    with pytest.raises(BadSourceError, match=r"holds pickled objects other than tensors \(it would import .*Net\)"):
        export(str(module_file), ExportOptions())
    with pytest.raises(BadSourceError, match=r"holds a state dict, not a model; give the model's factory"):
        export(str(weights_file), ExportOptions())
    sys.modules.setdefault(__name__, sys.modules[__name__])
    assert export(str(module_file), ExportOptions(trust_source=True)).framework == "torch"


def test_keras_lambda_layer_is_refused_with_its_full_reason(tmp_path: Path) -> None:
    keras = pytest.importorskip("keras")
    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Lambda(lambda x: x * 2.0)(inputs))
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(BadSourceError) as caught:
        export(str(path), ExportOptions())
    message = str(caught.value)
    assert message.startswith(f"Keras refuses to load {path} in safe mode: Requested the deserialization of a `Lambda`")
    assert "arbitrary code execution" in message and message.endswith("pass --trust-source.")
