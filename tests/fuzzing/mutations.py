"""Mutated inputs, in named classes. Each mutator takes a seeded generator and a seed graph and returns the
file's bytes and one line saying what it did; :func:`mutant` picks the class of input ``index`` round-robin
and derives the generator from ``(run seed, index)``, so input 42 of a run is the same file whatever
``--jobs`` or ``--count`` says.

Protobuf strings must be valid UTF-8 when set from Python, so non-UTF-8 names and values are written as
ASCII placeholders of the same length and swapped for invalid bytes in the serialised file (lengths, hence
the wire format, stay intact).
"""

from __future__ import annotations

import copy
import gzip
import io
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import onnx
from onnx import AttributeProto, TensorProto, helper

from tests.fuzzing.seeds import Seed

INTERESTING_INTS = (0, 1, -1, 2, -2, 3, 7, 255, 2**31 - 1, -(2**31), 2**32, 2**40, 10**12, 2**62, 2**63 - 1, -(2**63))
INTERESTING_FLOATS = (0.0, -0.0, 1.0, -1.0, 1e-45, 1e30, -1e30, float("inf"), float("-inf"), float("nan"), 3.5)
HUGE_DIMS = (2**31 - 1, 2**40, 10**9, 10**12, 2**62, 2**63 - 1)
ODD_DIMS = (0, -1, -2, -7, -(2**31)) + HUGE_DIMS
BAD_BYTES = (b"\xff", b"\xfe", b"\x80", b"\xc3(", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\x00")
OPS = ("Conv", "Relu", "Add", "Mul", "Pad", "Transpose", "Reshape", "LayerNormalization", "BatchNormalization",
       "Einsum", "Loop", "If", "Scan", "Gather", "Resize", "ReduceMean", "Identity", "Dropout", "Constant", "Cast",
       "MaxPool", "GlobalAveragePool", "Softmax", "Gemm", "MatMul", "Split", "Concat", "Slice", "Squeeze", "NoSuchOp",
       "", "conv", "Sqrt", "Div", "Sub", "Pow", "Erf", "QuantizeLinear", "ConvInteger", "StatefulPartitionedCall")
INTERFACE_JSON = (
    "not json", "", "[1, 2, 3]", "null", '"x"', "{", '{"x": 1}', '{"x": {"kind": "input"}}',
    '{"x": {"kind": "input", "perm": [0, 0, 1, 2]}}', '{"x": {"kind": "input", "perm": [0, 3, 1, 2]}}',
    '{"y": {"kind": "output", "perm": [0, 2, 3, 1]}}', '{"x": {"kind": "input", "perm": [true, false]}}',
    '{"x": {"kind": "input", "perm": [1e400, 0]}}', '{"x": {"kind": "sideways", "perm": [0]}}',
    '{"x": {"kind": "input", "perm": [0, 1, 2, 3], "was": 5, "now": null}}', '{"x": {"kind": "input", "perm": "0123"}}',
    '{"x": {"kind": "input", "perm": [99999999999, 0]}}', '{"x": {"kind": "input", "perm": [0, 1, 2, 3, 4, 5, 6, 7, 8]}}',
    "[" * 100000 + "]" * 100000, '{"x": {"kind": "input", "perm": [' + "9" * 5000 + "]}}",
)


@dataclass
class Built:
    """A mutated model before serialisation, with the placeholders to swap for invalid bytes."""

    model: onnx.ModelProto
    detail: list[str] = field(default_factory=list)
    swaps: list[tuple[bytes, bytes]] = field(default_factory=list)

    def bad_text(self, rng: np.random.Generator, length: int = 8) -> str:
        """A placeholder that becomes ``length`` bytes of invalid UTF-8 in the file."""
        raw = b"".join(BAD_BYTES[int(i)] for i in rng.integers(0, len(BAD_BYTES), size=length))[:length]
        raw = raw.ljust(length, b"\xff")
        marker = f"~{len(self.swaps):0{length - 2}d}~"
        self.swaps.append((marker.encode(), raw))
        return marker

    def serialise(self) -> bytes:
        data = self.model.SerializeToString()
        for marker, raw in self.swaps:
            data = data.replace(marker, raw)
        return data


@dataclass(frozen=True)
class Mutant:
    index: int
    kind: str
    seed: str
    detail: str
    data: bytes
    suffix: str = ".onnx"


def _choice(rng: np.random.Generator, items: Sequence):
    return items[int(rng.integers(0, len(items)))]


def _all_graphs(graph: onnx.GraphProto) -> list[onnx.GraphProto]:
    found = [graph]
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == AttributeProto.GRAPH:
                found += _all_graphs(attr.g)
            for g in attr.graphs:
                found += _all_graphs(g)
    return found


def _nodes(model: onnx.ModelProto) -> list[onnx.NodeProto]:
    return [n for g in _all_graphs(model.graph) for n in g.node]


def _value_infos(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    g = model.graph
    return list(g.input) + list(g.output) + list(g.value_info)


# ----------------------------------------------------------------------------------------- byte level


def bit_flip(rng: np.random.Generator, seed: Seed) -> tuple[bytes, str]:
    data = bytearray(seed.data)
    flips = int(rng.integers(1, 17))
    # Half the time in the first 4 kB, where nodes and attributes are serialised (before the weights).
    span = len(data) if rng.random() < 0.5 else min(len(data), 4096)
    for _ in range(flips):
        pos = int(rng.integers(0, span))
        data[pos] ^= 1 << int(rng.integers(0, 8))
    return bytes(data), f"{flips} bit(s) flipped in the first {span} bytes"


def truncate(rng: np.random.Generator, seed: Seed) -> tuple[bytes, str]:
    cut = int(rng.integers(0, len(seed.data)))
    tail = bytes(rng.integers(0, 256, size=int(rng.integers(0, 9)), dtype=np.uint8)) if rng.random() < 0.3 else b""
    return seed.data[:cut] + tail, f"cut at byte {cut} of {len(seed.data)}" + (f", {len(tail)} random bytes added" if tail else "")


def renamed_file(rng: np.random.Generator, seed: Seed) -> tuple[bytes, str]:
    kinds: dict[str, Callable[[], bytes]] = {
        "png": lambda: b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(rng.integers(0, 256, 64, dtype=np.uint8)),
        "zip": lambda: _zip_of(seed.data),
        "gzip": lambda: gzip.compress(seed.data, mtime=0),
        "text": lambda: b"This is not a model.\nIt is a text file named .onnx.\n",
        "json": lambda: json.dumps({"graph": {"node": []}}).encode(),
        "empty": lambda: b"",
        "random": lambda: bytes(rng.integers(0, 256, int(rng.integers(1, 4096)), dtype=np.uint8)),
        "elf": lambda: b"\x7fELF\x02\x01\x01" + bytes(57),
        "tensor-proto": lambda: helper.make_tensor("t", TensorProto.FLOAT, [2], [1.0, 2.0]).SerializeToString(),
        "graph-proto": lambda: seed.model.graph.SerializeToString(),
        "zlib": lambda: zlib.compress(seed.data),
        "utf16-text": lambda: "ir_version: 8\ngraph { }".encode("utf-16"),
    }
    kind = _choice(rng, sorted(kinds))
    return kinds[kind](), f"a {kind} file named .onnx"


def _zip_of(data: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(zipfile.ZipInfo("model.onnx", (1980, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


# ------------------------------------------------------------------------------------ protobuf fields


def dims(rng: np.random.Generator, built: Built) -> None:
    """A dim of a graph input/output/value_info, or of an initializer, set to an odd value, or a dim
    added or removed."""
    infos = [vi for vi in _value_infos(built.model) if vi.type.tensor_type.shape.dim]
    inits = [t for t in built.model.graph.initializer if t.dims]
    if inits and (not infos or rng.random() < 0.4):
        tensor = _choice(rng, inits)
        axis = int(rng.integers(0, len(tensor.dims)))
        value = int(_choice(rng, ODD_DIMS + (1, 2, 3)))
        tensor.dims[axis] = value
        built.detail.append(f"initializer {tensor.name} dim {axis} = {value}")
        return
    if not infos:
        return
    vi = _choice(rng, infos)
    shape = vi.type.tensor_type.shape
    action = _choice(rng, ("value", "value", "param", "drop", "add", "clear"))
    axis = int(rng.integers(0, len(shape.dim)))
    if action == "value":
        value = int(_choice(rng, ODD_DIMS + (1, 3, 5)))
        shape.dim[axis].dim_value = value
        built.detail.append(f"{vi.name} dim {axis} = {value}")
    elif action == "param":
        shape.dim[axis].dim_param = _choice(rng, ("", "N", "batch", "?", "-1", built.bad_text(rng)))
        built.detail.append(f"{vi.name} dim {axis} made symbolic")
    elif action == "drop":
        del shape.dim[axis]
        built.detail.append(f"{vi.name} dim {axis} removed")
    elif action == "add":
        shape.dim.add().dim_value = int(_choice(rng, (1, 0, 3, 2**40)))
        built.detail.append(f"{vi.name} gained a dim")
    else:
        vi.type.tensor_type.ClearField("shape")
        built.detail.append(f"{vi.name} shape cleared")


def dtypes(rng: np.random.Generator, built: Built) -> None:
    value = int(_choice(rng, tuple(range(0, 26)) + (99, 2**31 - 1)))
    if rng.random() < 0.5 and built.model.graph.initializer:
        tensor = _choice(rng, built.model.graph.initializer)
        tensor.data_type = value
        built.detail.append(f"initializer {tensor.name} data_type = {value}")
        return
    vi = _choice(rng, _value_infos(built.model))
    vi.type.tensor_type.elem_type = value
    built.detail.append(f"{vi.name} elem_type = {value}")


def attributes(rng: np.random.Generator, built: Built) -> None:
    nodes = [n for n in _nodes(built.model) if n.attribute] or _nodes(built.model)
    if not nodes:
        return
    node = _choice(rng, nodes)
    action = _choice(rng, ("value", "value", "type", "clear", "drop", "duplicate", "add"))
    if action == "add" or not node.attribute:
        name = _choice(rng, ("axes", "perm", "epsilon", "pads", "auto_pad", "axis", "keepdims", "mode", "kernel_shape"))
        node.attribute.append(_random_attribute(rng, built, name))
        built.detail.append(f"{node.op_type} gained attribute {name}")
        return
    attr = _choice(rng, node.attribute)
    if action == "value":
        _mutate_attribute_value(rng, built, attr)
        built.detail.append(f"{node.op_type}.{attr.name} value changed")
    elif action == "type":
        attr.type = int(_choice(rng, tuple(t for t in range(0, 15) if t != attr.type)))
        built.detail.append(f"{node.op_type}.{attr.name} type = {attr.type}")
    elif action == "clear":
        kept = attr.type
        name = attr.name
        attr.Clear()
        attr.name, attr.type = name, kept
        built.detail.append(f"{node.op_type}.{attr.name} emptied")
    elif action == "drop":
        node.attribute.remove(attr)
        built.detail.append(f"{node.op_type}.{attr.name} removed")
    else:
        node.attribute.append(_random_attribute(rng, built, attr.name))
        built.detail.append(f"{node.op_type}.{attr.name} duplicated")


def _random_attribute(rng: np.random.Generator, built: Built, name: str) -> AttributeProto:
    kind = _choice(rng, ("int", "ints", "float", "string", "tensor", "graph"))
    if kind == "int":
        return helper.make_attribute(name, int(_choice(rng, INTERESTING_INTS)))
    if kind == "ints":
        return helper.make_attribute(name, [int(_choice(rng, INTERESTING_INTS)) for _ in range(int(rng.integers(0, 6)))],
                                     attr_type=AttributeProto.INTS)
    if kind == "float":
        return helper.make_attribute(name, float(_choice(rng, INTERESTING_FLOATS)))
    if kind == "string":
        return helper.make_attribute(name, _choice(rng, ("SAME_UPPER", "VALID", "", "reflect", built.bad_text(rng))))
    if kind == "tensor":
        return helper.make_attribute(name, helper.make_tensor("t", TensorProto.FLOAT, [2, 2], [1.0, 2.0, 3.0, 4.0]))
    return helper.make_attribute(name, helper.make_graph([], "empty", [], []))


def _mutate_attribute_value(rng: np.random.Generator, built: Built, attr: AttributeProto) -> None:
    if attr.type == AttributeProto.INT:
        attr.i = int(_choice(rng, INTERESTING_INTS))
    elif attr.type == AttributeProto.INTS:
        values = list(attr.ints) or [0]
        if rng.random() < 0.3:
            values = values[: int(rng.integers(0, len(values) + 1))] + [int(_choice(rng, INTERESTING_INTS))]
        else:
            values[int(rng.integers(0, len(values)))] = int(_choice(rng, INTERESTING_INTS))
        del attr.ints[:]
        attr.ints.extend(values)
    elif attr.type == AttributeProto.FLOAT:
        attr.f = float(_choice(rng, INTERESTING_FLOATS))
    elif attr.type == AttributeProto.FLOATS:
        del attr.floats[:]
        attr.floats.extend(float(_choice(rng, INTERESTING_FLOATS)) for _ in range(int(rng.integers(0, 5))))
    elif attr.type == AttributeProto.STRING:
        attr.s = _choice(rng, (b"", b"SAME_LOWER", b"NOTSET", b"edge", b"wrap", b"bogus")) if rng.random() < 0.6 \
            else built.bad_text(rng).encode()
    elif attr.type == AttributeProto.TENSOR:
        _malform_tensor(rng, built, attr.t)
    elif attr.type == AttributeProto.GRAPH:
        del attr.g.node[: int(rng.integers(0, len(attr.g.node) + 1))]
    else:
        attr.i = int(_choice(rng, INTERESTING_INTS))


def _malform_tensor(rng: np.random.Generator, built: Built, tensor: TensorProto) -> str:
    """A tensor whose data does not match its dims or dtype: what ``to_array`` chokes on."""
    action = _choice(rng, ("short-raw", "long-raw", "dims", "float-data", "dtype", "external", "string", "segment",
                           "int64-data", "no-data"))
    if action == "short-raw":
        tensor.raw_data = tensor.raw_data[: len(tensor.raw_data) // 2] or b"\x01"
    elif action == "long-raw":
        tensor.raw_data = tensor.raw_data + b"\x00" * int(rng.integers(1, 7))
    elif action == "dims":
        del tensor.dims[:]
        tensor.dims.extend(int(_choice(rng, (0, 1, 3, -1, 2**40))) for _ in range(int(rng.integers(0, 4))))
    elif action == "float-data":
        tensor.ClearField("raw_data")
        tensor.float_data.extend(float(v) for v in rng.standard_normal(int(rng.integers(0, 3))))
    elif action == "dtype":
        tensor.data_type = int(_choice(rng, (0, 8, 9, 16, 17, 23, 99)))
    elif action == "external":
        tensor.data_location = TensorProto.EXTERNAL
        if rng.random() < 0.5:
            tensor.external_data.add(key="location", value=_choice(rng, ("missing.bin", "../../etc/passwd", "", "/dev/zero")))
    elif action == "string":
        tensor.data_type = TensorProto.STRING
        tensor.string_data.append(built.bad_text(rng).encode())
    elif action == "segment":
        tensor.segment.begin, tensor.segment.end = 0, 1
    elif action == "int64-data":
        tensor.ClearField("raw_data")
        tensor.int64_data.extend([1, 2, 3])
    else:
        for name in ("raw_data", "float_data", "int32_data", "int64_data", "double_data"):
            tensor.ClearField(name)
    return action


def tensor_data(rng: np.random.Generator, built: Built) -> None:
    tensors = list(built.model.graph.initializer)
    tensors += [a.t for n in _nodes(built.model) for a in n.attribute if a.type == AttributeProto.TENSOR]
    if not tensors:
        return
    tensor = _choice(rng, tensors)
    action = _malform_tensor(rng, built, tensor)
    built.detail.append(f"tensor {tensor.name}: {action}")


def op_types(rng: np.random.Generator, built: Built) -> None:
    nodes = _nodes(built.model)
    if not nodes:
        return
    node = _choice(rng, nodes)
    roll = rng.random()
    if roll < 0.7:
        pool = OPS + tuple(n.op_type for n in nodes)
        node.op_type = _choice(rng, pool)
        built.detail.append(f"node {node.name or '#'} op_type = {node.op_type!r}")
    elif roll < 0.85:
        node.domain = _choice(rng, ("com.microsoft", "ai.onnx.ml", "unknown.domain", "ai.onnx", "pkg.onnxscript.torch_lib"))
        built.detail.append(f"{node.op_type} domain = {node.domain}")
    else:
        node.op_type = built.bad_text(rng)
        built.detail.append("op_type made non-UTF-8")


def names(rng: np.random.Generator, built: Built) -> None:
    """A tensor or node name changed: to another tensor's, to nothing, to non-UTF-8 bytes, very long."""
    g = built.model.graph
    nodes = _nodes(built.model)
    tensor_names = sorted({t for n in nodes for t in list(n.input) + list(n.output) if t} | {v.name for v in g.input})
    new = _choice(rng, ("", "bad", "bad", "other", "long", "slash", "newline"))
    value = {"": "", "other": _choice(rng, tensor_names) if tensor_names else "x", "long": "n" * 5000,
             "slash": "a/b\\c:0", "newline": "x\ny"}.get(new) or built.bad_text(rng, int(rng.integers(4, 12)))
    where = _choice(rng, ("node-input", "node-output", "graph-input", "graph-output", "node-name", "tensor-everywhere"))
    if where == "tensor-everywhere" and tensor_names:
        old = _choice(rng, tensor_names)
        _rename_everywhere(built.model, old, value)
    elif where in ("graph-input", "graph-output"):
        items = g.input if where == "graph-input" else g.output
        if items:
            _choice(rng, items).name = value
    elif nodes:
        node = _choice(rng, nodes)
        field_ = {"node-input": node.input, "node-output": node.output}.get(where)
        if field_ is not None and len(field_):
            field_[int(rng.integers(0, len(field_)))] = value
        else:
            node.name = value
    built.detail.append(f"{where} renamed ({new})")


def _rename_everywhere(model: onnx.ModelProto, old: str, new: str) -> None:
    for graph in _all_graphs(model.graph):
        for node in graph.node:
            for items in (node.input, node.output):
                for i, name in enumerate(items):
                    if name == old:
                        items[i] = new
        for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
            if vi.name == old:
                vi.name = new
        for tensor in graph.initializer:
            if tensor.name == old:
                tensor.name = new


def metadata(rng: np.random.Generator, built: Built) -> None:
    m = built.model
    roll = rng.random()
    if roll < 0.6:
        text = _choice(rng, INTERFACE_JSON)
        if rng.random() < 0.3:
            name = m.graph.input[0].name if m.graph.input else "x"
            text = json.dumps({name: {"kind": _choice(rng, ("input", "output")),
                                      "perm": [int(v) for v in rng.permutation(int(rng.integers(1, 6)))]}})
        m.metadata_props.add(key="onnxmend.interface", value=text)
        built.detail.append(f"onnxmend.interface = {text[:60]!r}")
    elif roll < 0.75:
        m.metadata_props.add(key=built.bad_text(rng), value=built.bad_text(rng))
        built.detail.append("non-UTF-8 metadata key and value")
    elif roll < 0.9:
        m.producer_name = _choice(rng, ("tf2onnx", "pytorch", "keras2onnx", "", "onnxmend", built.bad_text(rng)))
        m.producer_version = _choice(rng, ("1.0", "", built.bad_text(rng)))
        built.detail.append("producer changed")
    else:
        m.metadata_props.add(key="onnxmend.version", value=_choice(rng, ("0.0.0", "", built.bad_text(rng))))
        built.detail.append("onnxmend.version metadata added")


def opsets(rng: np.random.Generator, built: Built) -> None:
    m = built.model
    roll = rng.random()
    if roll < 0.5 and m.opset_import:
        m.opset_import[0].version = int(_choice(rng, (0, 1, 6, 9, 11, 13, 21, 23, 99, 10**9, -1)))
        built.detail.append(f"opset = {m.opset_import[0].version}")
    elif roll < 0.7:
        m.opset_import.add(domain=_choice(rng, ("", "com.microsoft", "ai.onnx")), version=int(_choice(rng, (1, 17, 99))))
        built.detail.append("a second opset import")
    elif roll < 0.85:
        del m.opset_import[:]
        built.detail.append("no opset import")
    else:
        m.ir_version = int(_choice(rng, (0, 1, 3, 11, 99, -1)))
        built.detail.append(f"ir_version = {m.ir_version}")


def structure(rng: np.random.Generator, built: Built) -> None:
    g = built.model.graph
    action = _choice(rng, ("drop-node", "duplicate-node", "reverse", "drop-init", "duplicate-init", "cycle"))
    if action == "drop-node" and g.node:
        del g.node[int(rng.integers(0, len(g.node)))]
    elif action == "duplicate-node" and g.node:
        g.node.append(copy.deepcopy(_choice(rng, g.node)))
    elif action == "reverse":
        reversed_nodes = list(g.node)[::-1]
        del g.node[:]
        g.node.extend(reversed_nodes)
    elif action == "drop-init" and g.initializer:
        del g.initializer[int(rng.integers(0, len(g.initializer)))]
    elif action == "duplicate-init" and g.initializer:
        twin = copy.deepcopy(_choice(rng, g.initializer))
        twin.raw_data = bytes(len(twin.raw_data))
        g.initializer.append(twin)
    elif action == "cycle" and len(g.node) > 1 and g.node[0].input and g.node[-1].output:
        g.node[0].input[0] = g.node[-1].output[0]
    built.detail.append(action)


FIELD_MUTATORS: dict[str, Callable[[np.random.Generator, Built], None]] = {
    "dims": dims, "dtype": dtypes, "attribute": attributes, "tensor-data": tensor_data, "op-type": op_types,
    "names": names, "metadata": metadata, "opset": opsets, "structure": structure,
}
