"""``onnxmend inspect``: what is in a graph and what onnxmend would fix.

Findings are counts with a one-line explanation, so a user sees at a glance how many Transposes sit
between convolutions, how many Pads could fold, which norms are still decomposed, which epsilons differ
from the source framework's convention, and which ops dynamic quantization would turn into ConvInteger.
The counting itself lives beside the passes that fix each concern (``inspect_padding``,
``inspect_layout``, ``inspect_norms``), so a finding and its fix never disagree on what they match.
"""

from __future__ import annotations

import collections
from dataclasses import asdict, dataclass, field
from pathlib import Path

import onnx

from onnxmend.passes.layout import inspect_layout
from onnxmend.passes.norm_epsilons import inspect_norms, norm_epsilons
from onnxmend.passes.padding import inspect_padding

UNSUPPORTED_OPS = ("StatefulPartitionedCall", "PartitionedCall", "Erfc")


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


def inspect_model(model: onnx.ModelProto, path: str | Path = "", framework: str = "onnx") -> Inspection:
    """Inspect ``model``; ``framework`` (torch, keras, onnx) decides which epsilons count as unusual."""
    graph = model.graph
    ops = dict(collections.Counter(n.op_type for n in graph.node).most_common())
    inits = {t.name for t in graph.initializer}
    inputs = [_io(v) for v in graph.input if v.name not in inits]
    outputs = [_io(v) for v in graph.output]
    dynamic = sorted({d for io in inputs + outputs for d in io["shape"] if isinstance(d, str)})
    size = Path(path).stat().st_size if path and Path(path).exists() else model.ByteSize()
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    result = Inspection(str(path), size, opset, len(graph.node), ops, inputs, outputs, dynamic)
    result.epsilons = norm_epsilons(model, framework)
    result.findings = [f for f in _findings(model, ops, result.epsilons, framework) if f.count]
    return result


def guess_framework(model: onnx.ModelProto) -> str:
    """The source framework named by the exporter that wrote ``model`` (``onnx`` when unknown)."""
    producer = model.producer_name.lower()
    if "tf2onnx" in producer or "tensorflow" in producer or "keras" in producer:
        return "keras"
    if "pytorch" in producer or "torch" in producer:
        return "torch"
    return "onnx"


def _io(value: onnx.ValueInfoProto) -> dict[str, object]:
    tt = value.type.tensor_type
    shape = [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?") for d in tt.shape.dim]
    return {"name": value.name, "shape": shape, "dtype": onnx.TensorProto.DataType.Name(tt.elem_type).lower()}


def _findings(model: onnx.ModelProto, ops: dict[str, int], epsilons: list[dict[str, object]],
              framework: str) -> list[Finding]:
    pads, layout, norms = inspect_padding(model), inspect_layout(model), inspect_norms(model)
    blocked = sum(norms["decomposed_not_fusable"].values())
    return [
        Finding("transposes", int(layout["transposes"]), "Transpose nodes in the graph"),
        Finding("transposes_between_layout_ops", int(layout["between_layout_sensitive"]),
                "Transposes between two layout-sensitive ops (Conv/Pool/norm): a layout round trip push-transposes targets"),
        Finding("pads", pads["pad_nodes"], "stand-alone Pad nodes"),
        Finding("pads_feeding_conv_pool", pads["pads_feeding_conv_or_pool"],
                "Pads feeding a Conv/Pool (directly or through a Transpose): fold-pad candidates"),
        Finding("computed_pads", pads["computed_pads"], "Pads whose amounts are computed at run time (fold-dynamic-pad candidates)"),
        Finding("auto_pad", pads["auto_pad_nodes"], "Conv/Pool nodes with auto_pad SAME_*/VALID (onnx2torch and onnx2tf reject them)"),
        Finding("asymmetric_pads", pads["asymmetric_pads_nodes"], "Conv/Pool nodes with asymmetric pads (TF 'same' style)"),
        Finding("decomposed_layer_norm", norms["decomposed_layer_norm"], "decomposed LayerNorms fuse-layer-norm can fuse"),
        Finding("decomposed_layer_norm_blocked", blocked, "LayerNorm-like chains that cannot be fused (see --json for why)"),
        Finding("epsilon_mismatch", sum(1 for e in epsilons if e["differs"]),
                f"norm epsilons that differ from the {framework} default (the seed-002 trap)"),
        Finding("conv_integer_hazard", ops.get("Conv", 0),
                "Convs that default quantize_dynamic would turn into ConvInteger (no CUDA kernel, slow on CPU)"),
        Finding("unsupported_ops", sum(ops.get(op, 0) for op in UNSUPPORTED_OPS),
                "ops onnxruntime cannot run (leftovers from a failed TensorFlow conversion)"),
    ]
