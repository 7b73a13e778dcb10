"""validate against a factory source: the ONNX file's static shapes stand in for a missing --input, and a
randomly initialised factory builds the same weights in `convert` and in a later `validate`."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from onnxmend.core.errors import NeedsInputShapes
from onnxmend.exporters import ExportOptions
from onnxmend.exporters.options import InputArg, parse_input_arg
from onnxmend.flows.convert import convert
from onnxmend.flows.convert_result import ConvertOptions
from onnxmend.flows.validate import validate

NET = textwrap.dedent('''
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 8, 3)  # random init, no seed of its own

        def forward(self, x):
            return torch.relu(self.conv(x))

    def make_model():
        return Net()
''')


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    root = tmp_path_factory.mktemp("validate")
    (root / "net.py").write_text(NET)
    source = f"{root / 'net.py'}:make_model"
    options = ConvertOptions(ExportOptions(inputs=(parse_input_arg("x:1x3x20x20"),), torch_exporter="legacy"))
    result = convert(source, root / "out", options)
    assert result.validation.verdict == "pass"
    return root / "out" / "model.onnx", source


def test_validate_without_input_takes_the_static_shapes_of_the_onnx_file(converted: tuple[Path, str]) -> None:
    model, source = converted
    result = validate(model, source)
    assert result.verdict == "pass", result.comparison.outputs
    assert [o.shape for o in result.comparison.outputs] == [(1, 8, 18, 18)]


def test_a_factory_without_input_and_a_dynamic_file_still_asks_for_input(converted: tuple[Path, str],
                                                                         tmp_path: Path) -> None:
    import onnx

    model, source = converted
    dynamic = onnx.load(str(model))
    dynamic.graph.input[0].type.tensor_type.shape.dim[2].dim_param = "height"
    onnx.save(dynamic, tmp_path / "dynamic.onnx")
    with pytest.raises(NeedsInputShapes, match=r"give its input shapes with --input"):
        validate(tmp_path / "dynamic.onnx", source)


def test_explicit_input_is_used_as_given(converted: tuple[Path, str]) -> None:
    model, source = converted
    result = validate(model, source, ExportOptions(inputs=(InputArg("x", (1, 3, 20, 20)),)))
    assert result.verdict == "pass"


def test_validation_frees_its_session_in_the_worker(converted: tuple[Path, str], monkeypatch) -> None:
    """The session of the model validated leaves the worker with the comparison: convert validates the raw
    export and the fixed graph one after the other, and keras VGG16's worker held both (4.6 GB -> 1.8 GB)."""
    from onnxmend.runtime.runners.isolated import IsolatedOnnxRunner

    closed: list[str] = []
    close = IsolatedOnnxRunner.close
    monkeypatch.setattr(IsolatedOnnxRunner, "close", lambda self: (closed.append(self.what), close(self))[1])
    model, source = converted
    assert validate(model, source).verdict == "pass"
    assert closed == ["the ONNX model"]
