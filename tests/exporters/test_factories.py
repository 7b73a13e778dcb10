"""Deciding a source's framework without importing one: factory files by their imports or --framework,
Paddle inference models by their files; and the one-sentence answer when an extra is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from onnxmend.core.errors import BadSourceError, MissingDependencyError, OnnxmendError
from onnxmend.exporters import remote, source_kind


@pytest.mark.parametrize("text, kind", [
    ("import torch\n", "torch"),
    ("import paddle\nfrom paddle import nn\n", "paddle"),
    ("from mindspore import nn\n", "mindspore"),
    ("import numpy as np  # builds its model through a package\n", "torch"),
])
def test_a_factory_file_is_the_framework_it_imports(tmp_path: Path, text: str, kind: str) -> None:
    path = tmp_path / "net.py"
    path.write_text(text + "def make():\n    pass\n")
    assert source_kind(f"{path}:make") == kind


def test_a_file_importing_two_frameworks_must_say_which(tmp_path: Path) -> None:
    path = tmp_path / "net.py"
    path.write_text("import torch\nimport paddle\n")
    with pytest.raises(OnnxmendError, match=r"imports paddle and torch; say which framework .* --framework"):
        source_kind(f"{path}:make")
    assert source_kind(f"{path}:make", "paddle") == "paddle"
    with pytest.raises(OnnxmendError, match="does not build factories"):
        source_kind(f"{path}:make", "tflite")


@pytest.mark.parametrize("source, kind", [
    ("paddle:pkg.net:make", "paddle"), ("mindspore:pkg.net:make", "mindspore"), ("torch:pkg.net:make", "torch"),
])
def test_prefixed_factories(source: str, kind: str) -> None:
    assert source_kind(source) == kind


def test_paddle_inference_models_by_their_files(tmp_path: Path) -> None:
    (tmp_path / "inference.json").write_text("{}")
    with pytest.raises(BadSourceError, match="does not know how to load inference.json"):
        source_kind(str(tmp_path / "inference.json"))  # a .json alone is not a Paddle model
    (tmp_path / "inference.pdiparams").write_bytes(b"")
    assert source_kind(str(tmp_path / "inference.json")) == "paddle"
    assert source_kind(str(tmp_path)) == "paddle"
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadSourceError, match="not a SavedModel .*, nor a Paddle inference model"):
        source_kind(str(tmp_path / "empty"))


def test_a_missing_extra_is_one_sentence_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(remote, "available", lambda module: module != "paddle2onnx")
    monkeypatch.setattr(remote, "_WORKERS", {})
    with pytest.raises(MissingDependencyError, match=r"needs paddle2onnx, .* install onnxmend's `paddle` extra"):
        remote.framework_worker("paddle")
    monkeypatch.setattr(remote, "available", lambda module: module != "mindspore")
    with pytest.raises(MissingDependencyError, match=r"needs MindSpore, .* `mindspore` extra"):
        remote.framework_worker("mindspore")
    monkeypatch.setattr(remote, "available", lambda module: module != "tf2onnx")
    with pytest.raises(MissingDependencyError, match=r"needs tf2onnx, .* `tflite` extra"):
        remote.framework_worker("tflite")
