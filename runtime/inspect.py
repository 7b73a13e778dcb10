"""``onnxmend inspect``: what is in a graph and what onnxmend would fix.

Two kinds of findings. *Facts* are counts with a one-line explanation (Transposes and how many sit between
layout-sensitive ops, asymmetric pads, every norm's epsilon against the source framework's convention,
Convs that dynamic quantization would turn into ConvInteger, ops onnxruntime cannot run). *Candidates* are
what each pass of a preset would change on this graph, found by running that pass's own matcher
(:meth:`~onnxmend.passes.infra.base.Pass.candidates`), so ``inspect`` and ``fix`` can never disagree on what
they match.
"""

from __future__ import annotations

import collections
import gc
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, TypeVar

import onnx
import onnx_graphsurgeon as gs

from onnxmend.core.errors import first_line
from onnxmend.core.graph import import_graph, model_opset
from onnxmend.core.isolated import infer_shapes_isolated
from onnxmend.core.large import is_heavy, model_bytes
from onnxmend.passes.infra.base import Candidates, PassContext
from onnxmend.passes.infra.catalogue import resolve
from onnxmend.passes.layout.findings import transpose_findings
from onnxmend.passes.norms.epsilons import norm_epsilons

T = TypeVar("T")
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
    candidates: list[Candidates] = field(default_factory=list)
    preset: str = ""

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["findings"] = [asdict(f) for f in self.findings]
        data["candidates"] = [
            {"pass": c.name, "count": c.count, "not_run": c.not_run,
             "skipped": [{"node": s.node, "reason": s.reason} for s in c.skipped]}
            for c in self.candidates
        ]
        return data


def inspect_model(model: onnx.ModelProto, path: str | Path = "", framework: str = "onnx",
                  preset: str | None = None, ctx: PassContext | None = None) -> Inspection:
    """Inspect ``model``; ``framework`` (torch, keras, onnx) decides which epsilons count as unusual.

    With ``preset`` the candidates of every pass in that preset are listed (``ctx`` is the context they
    would run in; by default the model's opset and interface as they are).
    """
    graph = model.graph
    ops = dict(collections.Counter(n.op_type for n in graph.node).most_common())
    inits = {t.name for t in graph.initializer}
    inputs = [_io(v) for v in graph.input if v.name not in inits]
    outputs = [_io(v) for v in graph.output]
    dynamic = sorted({d for io in inputs + outputs for d in io["shape"] if isinstance(d, str)})
    size = Path(path).stat().st_size if path and Path(path).is_file() else model_bytes(model)  # ByteSize serialises
    result = Inspection(str(path), size, model_opset(model), len(graph.node), ops, inputs, outputs, dynamic)
    imported = import_graph(infer_shapes_isolated(model))
    result.epsilons = _guarded(result, "norm epsilons", lambda: norm_epsilons(model, framework, imported), [])
    layout = _guarded(result, "layout findings", lambda: transpose_findings(model, imported), {})
    result.findings = [f for f in _facts(model, ops, result.epsilons, framework, layout) if f.count] + result.findings
    if preset:
        ctx = ctx or PassContext(opset=model_opset(model), preset=preset if preset != "none" else "fix",  # type: ignore[arg-type]
                                 framework=framework)
        result.candidates, result.preset = pass_candidates(imported, preset, ctx), preset
    if is_heavy(model):
        # The imported graph (reference cycles) holds the annotated copy of the model and its weights: freed
        # now, not at the collector's next full pass (keras VGG16's convert held two such copies, 1.1 GB).
        del imported
        gc.collect()
    return result


def _guarded(result: Inspection, what: str, compute: Callable[[], T], empty: T) -> T:
    """``compute()``; a reader that raises costs its finding, with a line saying so, never the inspection."""
    try:
        return compute()
    except Exception as exc:  # a matcher bug on an unusual graph
        result.findings.append(Finding("not_computed", 1, f"{what} not computed: its reader raised "
                                                          f"{type(exc).__name__}: {first_line(exc, 160)}"))
        return empty


def pass_candidates(graph: gs.Graph, preset: str, ctx: PassContext) -> list[Candidates]:
    """Each pass of ``preset`` asked, on the graph as it is (shapes inferred), what it would change."""
    found = []
    for p in resolve(preset):
        try:
            found.append(p.candidates(graph, ctx))
        except Exception as exc:  # a matcher bug is reported as such, never a crash of inspect
            found.append(Candidates(p.name, 0, not_run=f"its matcher raised {type(exc).__name__}: {first_line(exc)}"))
    return found


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


def _asymmetric_pads(model: onnx.ModelProto) -> int:
    count = 0
    for node in model.graph.node:
        pads = next((list(a.ints) for a in node.attribute if a.name == "pads"), [])
        if node.op_type != "Pad" and pads and pads[: len(pads) // 2] != pads[len(pads) // 2:]:
            count += 1
    return count


def _facts(model: onnx.ModelProto, ops: dict[str, int], epsilons: list[dict[str, object]],
           framework: str, layout: dict[str, object]) -> list[Finding]:
    return [
        Finding("transposes", int(layout.get("transposes", 0)), "Transpose nodes in the graph"),  # type: ignore[call-overload]
        Finding("transposes_between_layout_ops", int(layout.get("between_layout_sensitive", 0)),  # type: ignore[call-overload]
                "Transposes between two layout-sensitive ops (Conv/Pool/norm): a layout round trip push-transposes targets"),
        Finding("pads", ops.get("Pad", 0), "stand-alone Pad nodes"),
        Finding("asymmetric_pads", _asymmetric_pads(model), "Conv/Pool nodes with asymmetric pads (TF 'same' style)"),
        Finding("epsilon_mismatch", sum(1 for e in epsilons if e["differs"]),
                f"norm epsilons that differ from the {framework} default (a port that kept the other framework's default drifts)"),
        Finding("conv_integer_hazard", ops.get("Conv", 0),
                "Convs that default quantize_dynamic would turn into ConvInteger (no CUDA kernel, slow on CPU)"),
        Finding("unsupported_ops", sum(ops.get(op, 0) for op in UNSUPPORTED_OPS),
                "ops onnxruntime cannot run (leftovers from a failed TensorFlow conversion)"),
    ]
