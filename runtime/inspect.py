"""``onnxmend inspect``: what is in a graph and what onnxmend would fix.

Findings are counts with a one-line explanation, so a user sees at a glance how many Transposes sit next
to convolutions, how many Pads could fold, which norms are still decomposed, and which ops dynamic
quantization would turn into ConvInteger.
"""

from __future__ import annotations

import collections
from dataclasses import asdict, dataclass, field
from pathlib import Path

import onnx

LAYOUT_SENSITIVE = {
    "Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool", "GlobalAveragePool", "GlobalMaxPool",
    "BatchNormalization", "InstanceNormalization", "GroupNormalization", "LayerNormalization", "Resize",
}
POOLS = {"MaxPool", "AveragePool", "LpPool"}
PADDED_OPS = {"Conv", "ConvTranspose"} | POOLS
NORM_OPS = ("BatchNormalization", "LayerNormalization", "InstanceNormalization", "GroupNormalization")


@dataclass(frozen=True)
class Finding:
    key: str
    count: int
    message: str


@dataclass
class Inspection:
    path: str
    size_bytes: int
    opset: int
    nodes: int
    ops: dict[str, int]
    inputs: list[dict[str, object]]
    outputs: list[dict[str, object]]
    dynamic_dims: list[str]
    findings: list[Finding] = field(default_factory=list)
    epsilons: list[dict[str, object]] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["findings"] = [asdict(f) for f in self.findings]
        return data


def inspect_model(model: onnx.ModelProto, path: str | Path = "") -> Inspection:
    graph = model.graph
    ops = dict(collections.Counter(n.op_type for n in graph.node).most_common())
    inits = {t.name for t in graph.initializer}
    inputs = [_io(v) for v in graph.input if v.name not in inits]
    outputs = [_io(v) for v in graph.output]
    dynamic = sorted({d for io in inputs + outputs for d in io["shape"] if isinstance(d, str)})
    size = Path(path).stat().st_size if path and Path(path).exists() else model.ByteSize()
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    result = Inspection(str(path), size, opset, len(graph.node), ops, inputs, outputs, dynamic)
    result.findings = [f for f in _findings(model) if f.count]
    result.epsilons = norm_epsilons(model)
    return result


def _io(value: onnx.ValueInfoProto) -> dict[str, object]:
    tt = value.type.tensor_type
    shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim]
    return {"name": value.name, "shape": shape, "dtype": onnx.TensorProto.DataType.Name(tt.elem_type).lower()}


def _findings(model: onnx.ModelProto) -> list[Finding]:
    graph = model.graph
    producer = {o: n for n in graph.node for o in n.output}
    consumers: dict[str, list[onnx.NodeProto]] = collections.defaultdict(list)
    for n in graph.node:
        for i in n.input:
            consumers[i].append(n)

    def next_to_sensitive(n: onnx.NodeProto) -> bool:
        before = producer.get(n.input[0]) if n.input else None
        after = consumers.get(n.output[0], [])
        return (before is not None and before.op_type in LAYOUT_SENSITIVE) or any(
            c.op_type in LAYOUT_SENSITIVE for c in after
        )

    def between_sensitive(n: onnx.NodeProto) -> bool:
        return _walk_to_sensitive(n, producer, consumers)

    transposes = [n for n in graph.node if n.op_type == "Transpose"]
    pads = [n for n in graph.node if n.op_type == "Pad"]
    padded = [n for n in graph.node if n.op_type in PADDED_OPS]
    auto_pad = [n for n in padded if _attr(n, "auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET")]
    asym = [n for n in padded if _asymmetric(_attr(n, "pads", None))]
    pads_feeding = [n for n in pads if any(c.op_type in PADDED_OPS or c.op_type == "Transpose" for c in consumers.get(n.output[0], []))]
    return [
        Finding("transposes", len(transposes), "Transpose nodes in the graph"),
        Finding("transposes_near_layout_ops", sum(map(next_to_sensitive, transposes)),
                "Transposes next to a Conv/Pool/norm (push-transposes can often remove them)"),
        Finding("transposes_between_layout_ops", sum(map(between_sensitive, transposes)),
                "Transposes on a path between two layout-sensitive ops (a layout round trip)"),
        Finding("pads", len(pads), "stand-alone Pad nodes"),
        Finding("pads_feeding_conv_pool", len(pads_feeding), "Pads feeding a Conv/Pool (directly or through a Transpose): fold-pad candidates"),
        Finding("auto_pad", len(auto_pad), "Conv/Pool nodes with auto_pad SAME_*/VALID (some converters reject them)"),
        Finding("asymmetric_pads", len(asym), "Conv/Pool nodes with asymmetric pads (TF 'same' style)"),
        Finding("shape_computed_pads", sum(1 for n in pads if len(n.input) > 1 and n.input[1] not in {t.name for t in graph.initializer} and producer.get(n.input[1]) is not None and producer[n.input[1]].op_type != "Constant"),
                "Pads whose amounts are computed at run time (fold-dynamic-pad candidates)"),
        Finding("decomposed_layer_norm_candidates", _decomposed_ln(graph, consumers),
                "ReduceMean→Sub→…→ReduceMean chains that look like a decomposed LayerNorm"),
        Finding("conv_integer_hazard", sum(1 for n in graph.node if n.op_type == "Conv"),
                "Convs that default quantize_dynamic would turn into ConvInteger (no CUDA kernel, slow on CPU)"),
        Finding("unsupported_ops", sum(1 for n in graph.node if n.op_type in ("StatefulPartitionedCall", "PartitionedCall", "Erfc")),
                "ops onnxruntime cannot run (leftovers from a failed TensorFlow conversion)"),
    ]


def _walk_to_sensitive(n, producer, consumers, limit: int = 6) -> bool:
    """A Transpose with a layout-sensitive op within a few elementwise hops on both sides."""
    def reach(tensor: str, upstream: bool) -> bool:
        for _ in range(limit):
            node = producer.get(tensor) if upstream else next(iter(consumers.get(tensor, [])), None)
            if node is None:
                return False
            if node.op_type in LAYOUT_SENSITIVE:
                return True
            if not node.input or not node.output:
                return False
            tensor = node.input[0] if upstream else node.output[0]
        return False
    return bool(n.input) and reach(n.input[0], True) and reach(n.output[0], False)


def _decomposed_ln(graph: onnx.GraphProto, consumers) -> int:
    count = 0
    for n in graph.node:
        if n.op_type != "ReduceMean":
            continue
        subs = [c for c in consumers.get(n.output[0], []) if c.op_type == "Sub"]
        if subs and any(c.op_type in ("Pow", "Mul") for s in subs for c in consumers.get(s.output[0], [])):
            count += 1
    return count


def norm_epsilons(model: onnx.ModelProto) -> list[dict[str, object]]:
    """Every norm node's epsilon; ONNX's default (1e-5) when the attribute is absent."""
    return [
        {"node": n.name or n.op_type, "op": n.op_type, "epsilon": float(_attr(n, "epsilon", 1e-5))}
        for n in model.graph.node if n.op_type in NORM_OPS
    ]


def _attr(node: onnx.NodeProto, name: str, default):
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


def _asymmetric(pads) -> bool:
    if not pads:
        return False
    half = len(pads) // 2
    return any(pads[i] != pads[i + half] for i in range(half))
