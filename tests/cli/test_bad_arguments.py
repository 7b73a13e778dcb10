"""Bad arguments and unlucky files a user hands the CLI: each is one sentence on stderr and exit code 2 —
never a traceback, never a hang, never a user's file overwritten, never the input modified."""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from tests.builders import conv_relu_model
from tests.builders.cli import messages, onnxmend

NET = '''
import torch

class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.example_inputs = (torch.randn(1, 3, 16, 16),)

    def forward(self, x):
        return torch.relu(self.conv(x))

def make_model():
    return Net()
'''




@pytest.fixture
def work(tmp_path: Path) -> Path:
    onnx.save(conv_relu_model(), tmp_path / "model.onnx")
    renamed = conv_relu_model()
    renamed.graph.input[0].name = "image"
    renamed.graph.node[0].input[0] = "image"
    onnx.save(renamed, tmp_path / "other.onnx")
    two = helper.make_graph([helper.make_node("Add", ["a", "b"], ["y"])], "two",
                            [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1, 3, 8, 8]) for n in "ab"],
                            [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])])
    onnx.save(helper.make_model(two, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), tmp_path / "two.onnx")
    (tmp_path / "net.py").write_text(NET)
    (tmp_path / "user.txt").write_text("the user's notes\n")
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "model.onnx").write_bytes(b"a model of the user's")
    return tmp_path


def _external(tmp_path: Path, location: str, write_data: bool) -> Path:
    model = conv_relu_model()
    weight = next(t for t in model.graph.initializer if t.name == "W")
    data = numpy_helper.to_array(weight).tobytes()
    weight.ClearField("raw_data")
    weight.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", str(len(data)))):
        weight.external_data.add(key=key, value=value)
    folder = tmp_path / "ext"
    folder.mkdir(exist_ok=True)
    if write_data:
        (folder / location).write_bytes(data)
    path = folder / "model.onnx"
    path.write_bytes(model.SerializeToString())
    return path


CASES = {
    "an output under a file": (["fix", "model.onnx", "-o", "user.txt/fixed.onnx"], r"user\.txt is a file, not a folder"),
    "a --input of the wrong rank": (["fix", "model.onnx", "-o", "f.onnx", "--input", "x:1x3"],
                                    r"--input x has 2 dims but the model's input is 1x3x8x8"),
    "a torch --input its model cannot take": (["convert", "net.py:make_model", "-o", "o", "--input", "x:1x3x64"],
                                              r"The model does not run on inputs x \[1, 3, 64\]"),
    "a 120 GB --input": (["convert", "model.onnx", "-o", "o", "--input", "x:1x3x200000x50000"],
                         r"Input x of shape 1x3x200000x50000 would take 120 GB"),
    # names that differ are matched by position (a port); two inputs against one cannot be matched
    "a source whose inputs do not match": (["validate", "model.onnx", "--source", "two.onnx"],
                                           r"The source takes 2 input\(s\) and the model 1; their interfaces cannot be matched"),
    "-o onto a user's file": (["fix", "model.onnx", "-o", "user.txt"],
                              r"user\.txt exists and was not written by onnxmend; choose another -o or pass --force"),
    "-o into a folder with a user's model": (["convert", "model.onnx", "-o", "theirs"],
                                             r"theirs already holds model\.onnx, which onnxmend did not write"),
    "quantize into a folder with a user's model": (["quantize", "other.onnx", "-o", "theirs"],
                                                   r"theirs already holds model\.onnx, which onnxmend did not write"),
    "bench on CUDA with no GPU": (["bench", "model.onnx", "--provider", "cuda", "--runs", "1", "-o", "b"],
                                  r"Nothing was measured: every subject was skipped \(CUDA unavailable"),
    "an unknown pass": (["fix", "model.onnx", "-o", "f.onnx", "--passes", "fold-everything"],
                        r"Unknown pass fold-everything"),
    "an unknown source form": (["convert", "resnet", "-o", "o"], r"Unknown source 'resnet'"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_argument_is_one_sentence_and_exit_two(work: Path, case: str) -> None:
    args, sentence = CASES[case]
    before = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in work.rglob("*") if p.is_file()}
    result = onnxmend(*args, cwd=work)
    assert result.returncode == 2, (result.stdout, result.stderr)
    said = messages(result.stderr)
    assert "Traceback" not in result.stderr and said.startswith("error: "), result.stderr
    assert len(said.strip().splitlines()) == 1, result.stderr
    assert re.search(sentence, result.stderr), result.stderr
    after = {p: hashlib.sha256(p.read_bytes()).hexdigest() for p in before}
    assert after == before  # no input and no user's file was touched


def test_a_pipe_named_onnx_does_not_block_inspect(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "pipe.onnx")
    result = onnxmend("inspect", "pipe.onnx", cwd=tmp_path)
    assert result.returncode == 2 and "is not a regular file (a pipe or a device)" in result.stderr


@pytest.mark.parametrize("location, write, sentence", [
    ("weights.bin", False, r"refers to external data weights\.bin, which is not in"),
    ("../outside.bin", True, r"refers to external data outside its folder \(\.\./outside\.bin\)"),
    ("/etc/passwd", False, r"refers to external data outside its folder \(/etc/passwd\)"),
])
def test_external_data_problems_are_named(tmp_path: Path, location: str, write: bool, sentence: str) -> None:
    if write:  # the escape target exists: only the location is wrong
        (tmp_path / "outside.bin").write_bytes(np.ones(108, np.float32).tobytes())
    result = onnxmend("inspect", str(_external(tmp_path, location, write_data=False)), cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert re.search(sentence, result.stderr), result.stderr


def test_external_data_beside_the_model_loads(tmp_path: Path) -> None:
    path = _external(tmp_path, "weights.bin", write_data=True)
    assert onnxmend("inspect", str(path), "--json", cwd=tmp_path).returncode == 0


def test_an_internal_error_is_one_line_exit_four_and_a_log(tmp_path: Path) -> None:
    onnx.save(conv_relu_model(), tmp_path / "model.onnx")
    script = ("import sys; import onnxmend.cli.commands.inspect as command; "
              "command.inspect = lambda *args, **kwargs: 1 / 0; "
              "sys.argv = ['onnxmend', 'inspect', 'model.onnx']; from onnxmend.cli import main; main()")
    env = {**os.environ, "ONNXMEND_LOG_DIR": str(tmp_path / "logs")}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 4
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("internal error: ZeroDivisionError: division by zero (details in ")
    log = Path(line.rsplit("details in ", 1)[1].rstrip(")"))
    assert log.parent == tmp_path / "logs" and "Traceback" in log.read_text()
