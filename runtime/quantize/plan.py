"""Dynamic quantization planning: which nodes to quantize and with which settings, each choice with its reason.

:func:`build_plan` reads the graph and the target (CPU flags from /proc/cpuinfo) and returns a :class:`QuantPlan`;
the defaults and the measurements behind them are described in :mod:`onnxmend.runtime.quantize`.
"""

from __future__ import annotations

import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, TypeVar

import onnx

from onnxmend.core.errors import OnnxmendError

T = TypeVar("T")
Target = Literal["cpu", "cuda"]
WeightType = Literal["int8", "uint8"]
SUPPORTED_OPS = ("MatMul", "Gemm", "Gather", "Conv")
DEFAULT_OPS = ("MatMul", "Gemm", "Gather")
VNNI_FLAGS = ("avx512_vnni", "avx_vnni", "amx_int8", "amx_tile")
_X86 = ("x86_64", "amd64", "i386", "i686")


@dataclass(frozen=True)
class CpuInfo:
    x86: bool
    vnni_flags: tuple[str, ...]

    @property
    def vnni(self) -> bool:
        return bool(self.vnni_flags)


def detect_cpu(cpuinfo_text: str | None = None, machine: str | None = None) -> CpuInfo:
    """x86 or not, and which VNNI/AMX flags /proc/cpuinfo lists (none when it cannot be read)."""
    if cpuinfo_text is None:
        try:
            cpuinfo_text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            cpuinfo_text = ""
    flags: set[str] = set()
    for line in cpuinfo_text.splitlines():
        if line.startswith(("flags", "Features")) and ":" in line:
            flags.update(line.split(":", 1)[1].split())
    arch = (machine or platform.machine()).lower()
    return CpuInfo(arch in _X86, tuple(f for f in VNNI_FLAGS if f in flags))


@dataclass(frozen=True)
class PlanOverrides:
    """What the user forced; ``None`` keeps the planner's choice."""

    ops: tuple[str, ...] | None = None
    exclude_nodes: tuple[str, ...] = ()
    per_channel: bool | None = None
    reduce_range: bool | None = None
    weight_type: WeightType | None = None


@dataclass(frozen=True)
class NodeChoice:
    name: str
    op_type: str
    quantize: bool
    reason: str
    per_channel: bool = False


@dataclass
class QuantPlan:
    provider: Target
    op_types: tuple[str, ...]
    nodes: list[NodeChoice]
    weight_type: WeightType
    per_channel: bool
    reduce_range: bool
    reasons: dict[str, str] = field(default_factory=dict)
    risks: list[str] = field(default_factory=list)

    @property
    def selected(self) -> list[NodeChoice]:
        return [n for n in self.nodes if n.quantize]

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["selected_count"] = len(self.selected)
        return data


def validate_ops(ops: tuple[str, ...]) -> tuple[str, ...]:
    unknown = [op for op in ops if op not in SUPPORTED_OPS]
    if unknown:
        raise OnnxmendError(
            f"Cannot dynamically quantize op type(s) {', '.join(unknown)}; choose from {', '.join(SUPPORTED_OPS)}."
        )
    return ops


def build_plan(
    model: onnx.ModelProto, provider: Target, overrides: PlanOverrides = PlanOverrides(), cpu: CpuInfo | None = None,
) -> QuantPlan:
    """Choose op types, nodes and quantizer settings for ``model`` on ``provider``; see :mod:`onnxmend.runtime.quantize`."""
    cpu = cpu or detect_cpu()
    ops = validate_ops(overrides.ops) if overrides.ops is not None else DEFAULT_OPS
    names = {n.name for n in model.graph.node}
    missing = [n for n in overrides.exclude_nodes if n not in names]
    if missing:
        raise OnnxmendError(
            f"--exclude-nodes names {', '.join(missing)}, which the pre-processed graph does not have; "
            "use the node names the plan lists."
        )
    reasons: dict[str, str] = {}
    risks: list[str] = []
    per_channel = _choose(overrides.per_channel, False, "per_channel", reasons,
                          "off: no accuracy gain measured on MatMul weights, 1 % larger; Conv is per-tensor anyway")
    nodes = _node_choices(model, ops, set(overrides.exclude_nodes), per_channel)
    has_conv = any(n.quantize and n.op_type == "Conv" for n in nodes)
    reduce_default, reduce_why = _reduce_range_default(cpu)
    reduce_range = _choose(overrides.reduce_range, reduce_default, "reduce_range", reasons, reduce_why)
    weight_default: WeightType = "uint8" if has_conv and provider == "cpu" else "int8"
    weight_type = _choose(overrides.weight_type, weight_default, "weight_type", reasons,
                          "uint8: ORT's u8u8 ConvInteger is ~3x faster than u8s8 on CPU (MobileNetV2)"
                          if weight_default == "uint8" else "int8: u8s8 is ORT's fast MatMulInteger path")
    reasons["op_types"] = "from --ops" if overrides.ops is not None else (
        "MatMul/Gemm/Gather: Conv is excluded by default (ConvInteger: no CUDA kernel, slow on CPU)")
    if has_conv:
        risks.append(_conv_risk(provider))
    if provider == "cuda":
        risks.append("Dynamic quantization emits DynamicQuantizeLinear/MatMulInteger on uint8 activations; expect "
                     "onnxruntime to run them on CPU under the CUDA provider (the placement check lists them).")
    return QuantPlan(provider, tuple(ops), nodes, weight_type, per_channel, reduce_range, reasons, risks)


def _choose(forced: T | None, default: T, key: str, reasons: dict[str, str], why: str) -> T:
    reasons[key] = f"forced by flag ({forced})" if forced is not None else why
    return default if forced is None else forced


def _reduce_range_default(cpu: CpuInfo) -> tuple[bool, str]:
    if not cpu.x86:
        return False, "off: not x86; ARM int8 kernels accumulate in 32 bits (no int16 saturation)"
    if cpu.vnni:
        return False, f"off: CPU has {', '.join(cpu.vnni_flags)} (u8s8 dot products accumulate in int32)"
    return True, "on: x86 without VNNI; AVX2 vpmaddubsw saturates int16 with 8-bit weights, 7-bit weights fit"


def _conv_risk(provider: Target) -> str:
    if provider == "cuda":
        return "Conv → ConvInteger has no CUDA kernel: those nodes run on CPU with copies around them."
    return ("Conv → ConvInteger is slower than fp32 on CPU (MobileNetV2 measured 2.6x slower with uint8 weights, "
            "cosine 0.988); see the measured speed and accuracy in the report.")


def _node_choices(model: onnx.ModelProto, ops: tuple[str, ...], excluded: set[str], per_channel: bool) -> list[NodeChoice]:
    inits = {t.name: t for t in model.graph.initializer}
    choices = []
    for node in model.graph.node:
        if node.op_type not in SUPPORTED_OPS:
            continue
        depthwise = node.op_type == "Conv" and _is_depthwise(node, inits)
        reason = _why_not(node, inits)
        if reason is None and node.op_type not in ops:
            reason = f"{node.op_type} is not in the op types to quantize"
        if reason is None and node.name in excluded:
            reason = "excluded by --exclude-nodes"
        if reason is not None:
            choices.append(NodeChoice(node.name, node.op_type, False, reason))
            continue
        why = "depthwise Conv: weight quantized per tensor, never per channel" if depthwise else "constant weight"
        choices.append(NodeChoice(node.name, node.op_type, True, why, per_channel and node.op_type in ("MatMul", "Gemm")))
    return choices


def _why_not(node: onnx.NodeProto, inits: dict[str, onnx.TensorProto]) -> str | None:
    """Why quantize_dynamic cannot quantize ``node``'s weight, or None when it can."""
    float_types = (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16)
    weight_index = 0 if node.op_type == "Gather" else 1
    weight = inits.get(node.input[weight_index]) if len(node.input) > weight_index else None
    if weight is None or weight.data_type not in float_types:
        what = "data" if node.op_type == "Gather" else "weight"
        return f"{what} is not a constant float initializer (activation input)"
    if node.op_type == "Gather" and len(weight.dims) != 2:
        return f"Gather data has rank {len(weight.dims)}, not an embedding table"
    if node.op_type == "Gemm":
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
            return "Gemm with alpha/beta != 1 or transA: ORT cannot rewrite it to MatMul"
    return None


def _is_depthwise(node: onnx.NodeProto, inits: dict[str, onnx.TensorProto]) -> bool:
    group = next((a.i for a in node.attribute if a.name == "group"), 1)
    weight = inits.get(node.input[1]) if len(node.input) > 1 else None
    return group > 1 and weight is not None and len(weight.dims) >= 2 and weight.dims[1] == 1
