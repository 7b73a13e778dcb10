"""What every reader of a loaded model may take for granted, checked once where the file comes in.

A model file is untrusted input, and protobuf parses far more than ONNX allows: names that are not UTF-8
(Python's protobuf hands them back as ``bytes``), attributes whose type is not the one their operator
declares (a Transpose ``perm`` stored as a graph), tensors whose data does not fill their dims or whose
dtype does not exist, tensors marked external with no file named. Each of these would surface much later
as a traceback in whichever pass or report read it first, so :func:`check_wellformed` refuses them with
one sentence naming the tensor, node or field. Values that are well-typed but out of range (an axis of
99, a perm that is not a permutation) are the readers' to decline.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Iterator

import onnx
from onnx import AttributeProto, numpy_helper

from onnxmend.core.errors import OnnxmendError

_DEFAULT_DOMAINS = ("", "ai.onnx")


def check_wellformed(model: onnx.ModelProto, path: object) -> None:
    """Raise :class:`OnnxmendError` ("PATH is not a valid ONNX model: ...") for the first problem found."""
    check_structure(model, path)
    check_tensor_data(model, path)


def check_structure(model: onnx.ModelProto, path: object) -> None:
    """Text fields and attributes: what can be checked before external data is read."""
    _refuse(path, text_problem(model) or attribute_problem(model) or type_problem(model))


def check_tensor_data(model: onnx.ModelProto, path: object) -> None:
    """Every stored tensor readable as its dims and dtype say (after external data is read)."""
    _refuse(path, tensor_problem(model))


def _refuse(path: object, problem: str) -> None:
    if problem:
        raise OnnxmendError(f"{path} is not a valid ONNX model: {problem}.")


def graphs(graph: onnx.GraphProto) -> Iterator[onnx.GraphProto]:
    """``graph`` and every subgraph in it (If branches, Loop and Scan bodies), depth first."""
    yield graph
    for node in graph.node:
        for attr in node.attribute:
            if attr.type == AttributeProto.GRAPH or attr.HasField("g"):
                yield from graphs(attr.g)
            for sub in attr.graphs:
                yield from graphs(sub)


@dataclass(frozen=True)
class Stored:
    """A tensor a model stores, and where: an initializer, or an attribute of a node."""

    tensor: onnx.TensorProto
    node: onnx.NodeProto | None = None
    attribute: str = ""

    def __str__(self) -> str:
        if self.node is None:
            return f"initializer {_shown(self.tensor.name)}"
        return f"attribute {_shown(self.attribute)} of node {_node_label(self.node)}"


def tensors(model: onnx.ModelProto) -> Iterator[Stored]:
    """Every tensor a model stores: initializers and attribute tensors, subgraphs included."""
    for graph in graphs(model.graph):
        for tensor in graph.initializer:
            yield Stored(tensor)
        for node in graph.node:
            for attr in node.attribute:
                if attr.HasField("t"):
                    yield Stored(attr.t, node, attr.name)
                for tensor in attr.tensors:
                    yield Stored(tensor, node, attr.name)


# ------------------------------------------------------------------------------------------------- text


def text_problem(model: onnx.ModelProto) -> str:
    """The first text field that is not UTF-8 (protobuf returns those as ``bytes``), described."""
    if _graph_texts_ok(model.graph) and all(isinstance(v, str) for _, v in _model_texts(model)):
        return ""  # the common case, without building a description for every field
    label = next((label for label, value in _texts(model) if not isinstance(value, str)), "")
    return f"{label} is not UTF-8 text" if label else _string_attribute_problem(model)


def _graph_texts_ok(graph: onnx.GraphProto) -> bool:
    for node in graph.node:
        if not (type(node.name) is str and type(node.op_type) is str and type(node.domain) is str  # noqa: E721
                and all(type(t) is str for t in node.input) and all(type(t) is str for t in node.output)  # noqa: E721
                and all(type(p.key) is str and type(p.value) is str for p in node.metadata_props)):  # noqa: E721
            return False
        for attr in node.attribute:
            if type(attr.name) is not str or not _utf8(attr):  # noqa: E721
                return False
            if attr.HasField("g") and not _graph_texts_ok(attr.g):
                return False
            if any(not _graph_texts_ok(g) for g in attr.graphs):
                return False
    values = list(graph.input) + list(graph.output) + list(graph.value_info)
    return (type(graph.name) is str and all(type(t.name) is str for t in graph.initializer)  # noqa: E721
            and all(type(v.name) is str and all(type(d.dim_param) is str for d in v.type.tensor_type.shape.dim)  # noqa: E721
                    for v in values))


def _utf8(attr: onnx.AttributeProto) -> bool:
    try:
        for raw in ([attr.s] if attr.type == AttributeProto.STRING else attr.strings):
            raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _string_attribute_problem(model: onnx.ModelProto) -> str:
    for graph in graphs(model.graph):
        for node in graph.node:
            bad = next((a for a in node.attribute if not _utf8(a)), None)
            if bad is not None:
                return f"the string attribute {_shown(bad.name)} of node {_node_label(node)} is not UTF-8 text"
    return ""


def _texts(model: onnx.ModelProto) -> Iterator[tuple[str, object]]:
    yield from _model_texts(model)
    for graph in graphs(model.graph):
        yield from _graph_texts(graph)


def _model_texts(model: onnx.ModelProto) -> Iterator[tuple[str, object]]:
    yield "the producer name", model.producer_name
    yield "the producer version", model.producer_version
    yield "the model's domain", model.domain
    for prop in model.metadata_props:
        yield "a metadata key", prop.key
        yield f"metadata {_shown(prop.key)}", prop.value
    for opset in model.opset_import:
        yield "an opset domain", opset.domain
    for stored in tensors(model):
        for entry in stored.tensor.external_data:
            yield f"the external data of {stored}", entry.value


def _graph_texts(graph: onnx.GraphProto) -> Iterator[tuple[str, object]]:
    """One graph's text fields, each with a description (subgraphs are walked by the caller)."""
    yield "a graph name", graph.name
    for index, node in enumerate(graph.node):
        label = f"node {_shown(node.name)}" if node.name and isinstance(node.name, str) else f"node #{index}"
        yield f"the name of node #{index}", node.name
        yield f"the op type of {label}", node.op_type
        yield f"the domain of {label}", node.domain
        for name in list(node.input) + list(node.output):
            yield f"a tensor name of {label}", name
        for attr in node.attribute:
            yield f"an attribute name of {label}", attr.name
        for prop in node.metadata_props:  # provenance readers parse these
            yield f"a metadata key of {label}", prop.key
            yield f"the metadata {_shown(prop.key)} of {label}", prop.value
    for tensor in graph.initializer:
        yield "an initializer name", tensor.name
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        yield "a graph input, output or value name", vi.name
        for dim in vi.type.tensor_type.shape.dim:
            yield f"a dim name of {_shown(vi.name)}", dim.dim_param


def _shown(text: object) -> str:
    """A name as a sentence can show it: bytes decoded with replacement, long names cut."""
    value = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return repr(value if len(value) <= 60 else value[:57] + "...")


def _node_label(node: onnx.NodeProto) -> str:
    return f"{_shown(node.name)} ({_shown(node.op_type)})" if node.name else _shown(node.op_type)


# ------------------------------------------------------------------------------------------- attributes


def attribute_problem(model: onnx.ModelProto) -> str:
    """An attribute without a type, twice on one node, or of another type than its ONNX operator declares."""
    opsets = {o.domain or "": int(o.version) for o in model.opset_import}
    for graph in graphs(model.graph):
        for node in graph.node:
            problem = _node_attribute_problem(node, opsets.get("", 0))
            if problem:
                return problem
    return ""


def _node_attribute_problem(node: onnx.NodeProto, opset: int) -> str:
    if not node.attribute:
        return ""
    names = [a.name for a in node.attribute]
    repeated = next((n for n in names if names.count(n) > 1), None) if len(set(names)) < len(names) else None
    if repeated is not None:
        return f"node {_node_label(node)} has attribute {_shown(repeated)} twice"
    untyped = next((a for a in node.attribute if a.type == AttributeProto.UNDEFINED and not a.ref_attr_name), None)
    if untyped is not None:
        return f"attribute {_shown(untyped.name)} of node {_node_label(node)} has no type"
    declared = _declared_types(node.op_type, opset) if (node.domain or "") in _DEFAULT_DOMAINS else None
    if declared is None:
        return ""
    for attr in node.attribute:
        if attr.ref_attr_name:
            continue
        if attr.name not in declared:
            return f"node {_node_label(node)} has attribute {_shown(attr.name)}, which {node.op_type} does not take at opset {opset}"
        if declared[attr.name] != attr.type:
            return (f"attribute {_shown(attr.name)} of node {_node_label(node)} is {_type_name(attr.type)}; "
                    f"{node.op_type} declares it {_type_name(declared[attr.name])}")
    return ""


@functools.lru_cache(maxsize=1024)
def _declared_types(op_type: str, opset: int) -> dict[str, int] | None:
    """The attribute types the ONNX schema of ``op_type`` at ``opset`` declares (None for an unknown op)."""
    if not isinstance(op_type, str) or opset <= 0:
        return None
    try:
        schema = onnx.defs.get_schema(op_type, opset, "")
    except Exception:  # SchemaError: not an ONNX operator (or not at this opset); nothing to check against
        return None
    return {name: int(attr.type.value) for name, attr in schema.attributes.items()}


def _type_name(value: int) -> str:
    try:
        return AttributeProto.AttributeType.Name(value)
    except ValueError:
        return f"type {value}"


# ------------------------------------------------------------------------------------------------ types


def type_problem(model: onnx.ModelProto) -> str:
    """A graph input, output or value whose element type is no ONNX data type."""
    known = set(onnx.TensorProto.DataType.values())
    for graph in graphs(model.graph):
        for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
            if vi.type.HasField("tensor_type") and vi.type.tensor_type.elem_type not in known:
                return f"{_shown(vi.name)} has element type {vi.type.tensor_type.elem_type}, which is no ONNX data type"
    return ""


# ---------------------------------------------------------------------------------------------- tensors


def tensor_problem(model: onnx.ModelProto) -> str:
    """The first stored tensor numpy cannot read as its dims and dtype say (or marked external without a file)."""
    for where in tensors(model):
        tensor = where.tensor
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            if not any(e.key == "location" and e.value for e in tensor.external_data):
                return f"{where} is stored as external data but names no file"
            continue  # read with the external data, and checked again then
        if any(d < 0 for d in tensor.dims):
            return f"{where} has a negative dim ({list(tensor.dims)})"
        try:
            numpy_helper.to_array(tensor)
        except Exception as exc:  # a size mismatch, an unknown dtype, segments: numpy_helper raises several types
            return f"{where} cannot be read ({type(exc).__name__}: {str(exc).strip()[:120] or 'no detail'})"
    return ""
