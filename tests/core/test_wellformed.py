"""Models protobuf parses but no reader can trust are refused where they are loaded, in one sentence that
names the node, tensor or field: each case here was a traceback somewhere downstream (found by
bench/fuzz.py) before ``core.wellformed`` checked it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Callable

import numpy as np
import onnx
import pytest
from onnx import AttributeProto, TensorProto, helper, numpy_helper

from onnxmend.core.errors import OnnxmendError
from onnxmend.core.fileio import load_model
from tests.builders import conv_relu_model

BAD = b"\xff\xfe\x80ab\xc3("  # 7 bytes that are not UTF-8


def _save(tmp_path: Path, model: onnx.ModelProto, marker: str = "") -> Path:
    """``model`` saved; ``marker`` (7 ASCII characters) becomes invalid UTF-8 in the file."""
    data = model.SerializeToString()
    if marker:
        assert len(marker.encode()) == len(BAD) and marker.encode() in data
        data = data.replace(marker.encode(), BAD)
    path = tmp_path / "m.onnx"
    path.write_bytes(data)
    return path


def _node(model: onnx.ModelProto, op: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.op_type == op)


def _init(model: onnx.ModelProto, name: str) -> onnx.TensorProto:
    return next(t for t in model.graph.initializer if t.name == name)


def _op_type(m: onnx.ModelProto) -> str:
    _node(m, "Relu").op_type = "@MARK1@"
    return "@MARK1@"


def _node_input(m: onnx.ModelProto) -> str:
    _node(m, "Relu").input[0] = "@MARK2@"
    return "@MARK2@"


def _metadata(m: onnx.ModelProto) -> str:
    m.metadata_props.add(key="note", value="@MARK3@")
    return "@MARK3@"


def _node_metadata(m: onnx.ModelProto) -> str:
    # a bit flip in a dynamo export's provenance (pkg.onnxscript.rewriter.rule_name) crashed its reader
    _node(m, "Conv").metadata_props.add(key="pkg.onnxscript.rewriter.rule_name", value="@MARK5@")
    return "@MARK5@"


def _string_attribute(m: onnx.ModelProto) -> str:
    _node(m, "Conv").attribute.append(helper.make_attribute("auto_pad", "@MARK4@"))
    return "@MARK4@"


@pytest.mark.parametrize("mutate, message", [
    (_op_type, r"the op type of node .* is not UTF-8 text"),
    (_node_input, r"a tensor name of node .* is not UTF-8 text"),
    (_metadata, r"metadata 'note' is not UTF-8 text"),
    (_node_metadata, r"the metadata 'pkg.onnxscript.rewriter.rule_name' of node .* is not UTF-8 text"),
    (_string_attribute, r"the string attribute 'auto_pad' of node .*'Conv'.* is not UTF-8 text"),
])
def test_text_that_is_not_utf8_is_refused(tmp_path: Path, mutate: Callable[[onnx.ModelProto], str], message: str) -> None:
    model = conv_relu_model()
    path = _save(tmp_path, model, mutate(model))
    with pytest.raises(OnnxmendError, match=r"m\.onnx is not a valid ONNX model: " + message):
        load_model(path)


def _perm_as_graph(m: onnx.ModelProto) -> None:
    conv = _node(m, "Conv")
    pads = next(a for a in conv.attribute if a.name == "pads")
    pads.type = AttributeProto.GRAPH  # the ints stay; graphsurgeon would hand readers an empty Graph


def _twice(m: onnx.ModelProto) -> None:
    _node(m, "Conv").attribute.append(helper.make_attribute("pads", "r"))


def _undeclared(m: onnx.ModelProto) -> None:
    _node(m, "Relu").attribute.append(helper.make_attribute("axes", "r"))


def _untyped(m: onnx.ModelProto) -> None:
    _node(m, "Conv").attribute.add(name="group")


def _short_data(m: onnx.ModelProto) -> None:
    _init(m, "W").raw_data = _init(m, "W").raw_data[:10]


def _undefined_dtype(m: onnx.ModelProto) -> None:
    _init(m, "B").data_type = TensorProto.UNDEFINED


def _negative_dim(m: onnx.ModelProto) -> None:
    _init(m, "B").dims[0] = -4


def _external_without_file(m: onnx.ModelProto) -> None:
    _init(m, "B").data_location = TensorProto.EXTERNAL


def _no_such_elem_type(m: onnx.ModelProto) -> None:
    m.graph.output[0].type.tensor_type.elem_type = 33


def _bad_constant(m: onnx.ModelProto) -> None:
    constant = _node(m, "Constant")
    constant.attribute[0].t.dims[0] = 5  # holds 3 values


@pytest.mark.parametrize("mutate, message", [
    (_perm_as_graph, r"attribute 'pads' of node .*'Conv'.* is GRAPH; Conv declares it INTS"),
    (_twice, r"node .*'Conv'.* has attribute 'pads' twice"),
    (_undeclared, r"node .*'Relu'.* has attribute 'axes', which Relu does not take at opset 17"),
    (_untyped, r"attribute 'group' of node .*'Conv'.* has no type"),
    (_short_data, r"initializer 'W' cannot be read \(ValueError: "),
    (_undefined_dtype, r"initializer 'B' cannot be read \(TypeError: "),
    (_negative_dim, r"initializer 'B' has a negative dim \(\[-4\]\)"),
    (_external_without_file, r"initializer 'B' is stored as external data but names no file"),
    (_no_such_elem_type, r"'y' has element type 33, which is no ONNX data type"),
    (_bad_constant, r"attribute 'value' of node .*'Constant'.* cannot be read"),
])
def test_attributes_tensors_and_types_no_reader_can_trust_are_refused(tmp_path: Path, mutate, message: str) -> None:
    model = conv_relu_model()
    mutate(model)
    with pytest.raises(OnnxmendError, match=r"is not a valid ONNX model: " + message):
        load_model(_save(tmp_path, model))


def test_well_formed_models_load_including_custom_ops_with_any_attributes(tmp_path: Path) -> None:
    model = conv_relu_model()
    custom = helper.make_node("Transpose", ["y"], ["z"], domain="com.example", perm="not ints", anything=1.5)
    model.graph.node.append(custom)
    model.graph.output[0].name = "z"
    model.opset_import.append(helper.make_opsetid("com.example", 1))
    model.graph.initializer.append(numpy_helper.from_array(np.zeros((0, 3), np.float32), "empty"))
    loaded = load_model(_save(tmp_path, model))
    assert [n.op_type for n in loaded.graph.node][-1] == "Transpose"


def test_the_command_line_says_it_in_one_sentence(tmp_path: Path) -> None:
    model = conv_relu_model()
    path = _save(tmp_path, model, _op_type(model))
    done = subprocess.run([sys.executable, "-m", "onnxmend", "inspect", str(path), "--json"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert done.stderr.endswith("is not a valid ONNX model: the op type of node #4 is not UTF-8 text.\n")
