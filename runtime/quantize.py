"""Dynamic int8 quantization: a plan read from the graph and the target, then onnxruntime's quantize_dynamic.

Flow: ``quant_pre_process`` (shape inference + ORT's basic optimisations; on failure we retry without the
optimiser, then with plain ONNX shape inference, and say so) → :func:`build_plan` → ``quantize_dynamic``
restricted to exactly the planned nodes (``nodes_to_quantize``), so no node outside the plan is quantized
(ORT still rewrites every eligible Gemm into an equivalent float MatMul + Add).

Default choices and why (each one is overridable, and the plan records the reason it was made):

- **MatMul with a constant B** → ``MatMulInteger`` (ORT fuses it to ``DynamicQuantizeMatMul`` on CPU).
  MatMuls of two activations (attention scores) are left in float: there is no weight to quantize.
- **Gemm** (alpha = beta = 1, transA = 0, constant B): ORT rewrites it to MatMul + Add (node ``NAME_MatMul``)
  and quantizes that MatMul.
- **Gather on a rank-2 float initializer** (embedding tables): the table is stored in int8 and gathered rows
  are dequantized. In a BERT-style encoder the embeddings are ~40 % of the weights, so without this the
  artifact cannot get much below half of the fp32 size.
- **Conv is excluded**: dynamic Conv becomes ``ConvInteger``, which has no CUDA kernel and on CPU is slower
  than fp32. Measured on keras MobileNetV2 (2 threads, AVX2, reduce_range on): with uint8 weights 2.6x
  slower than fp32 and cosine 0.988, with int8 weights 7.9x slower and cosine 0.990. ``--ops Conv`` includes
  it with the risk stated; on CPU the weight type then defaults to uint8, ORT's faster ConvInteger path
  (also 64→64 3x3 conv at 56x56: fp32 9.2 ms, u8u8 8.6 ms, u8s8 31.8 ms).
- **Weight type int8** (u8s8: activations are uint8 from ``DynamicQuantizeLinear``), uint8 only as above.
- **reduce_range** (7-bit weights) exactly on x86 without VNNI. AVX2's ``vpmaddubsw`` multiplies u8×s8 pairs and
  adds each pair into a *saturating* int16: 255·127·2 = 64770 overflows 32767, 255·63·2 = 32130 does not. VNNI
  (avx512_vnni / avx_vnni, and AMX) accumulates straight into int32 and needs no headroom; ARM kernels
  accumulate in 32 bits too. Measured on this AVX2 machine, BERT-style encoder: cosine 0.9962 without
  reduce_range, 0.99992 with it.
- **per-channel off**: it applies to MatMul/Gemm weights only (ORT's dynamic ConvInteger path quantizes every
  Conv weight per tensor, so depthwise Convs are never per-channel); on the encoder it changed cosine by <1e-6
  and grew the file by 1 %.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Literal, TypeVar

import onnx

from onnxmend import fileio
from onnxmend.exporters.base import Export
from onnxmend.errors import OnnxmendError
from onnxmend.runtime.manifest import ArtifactContents, ArtifactPaths, write_artifacts
from onnxmend.runtime.quantize_gate import (
    Thresholds, gate_accuracy, gate_inputs, layer_errors, measure_latency, node_placement,
)

log = logging.getLogger(__name__)

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
    """Choose op types, nodes and quantizer settings for ``model`` on ``provider``; see the module docstring."""
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


@dataclass
class Prepared:
    """The pre-processed fp32 model the plan and the quantizer work on, and how it was produced."""

    model: onnx.ModelProto
    method: str
    notes: list[str]


def preprocess(model_path: Path) -> Prepared:
    """quant_pre_process, falling back to skip_optimization, then to plain ONNX shape inference (reported)."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    notes: list[str] = []
    with tempfile.TemporaryDirectory(prefix="onnxmend-quant-") as tmp:
        out = Path(tmp) / "pre.onnx"
        for method, kwargs in (("quant_pre_process", {}), ("quant_pre_process(skip_optimization)",
                                                            {"skip_optimization": True})):
            try:
                with _quiet_root_logger():
                    quant_pre_process(str(model_path), str(out), save_as_external_data=_is_large(model_path),
                                      **kwargs)
                return Prepared(_named(onnx.load(str(out))), method, notes)
            except Exception as exc:  # ORT's optimiser and symbolic shape inference raise many types
                notes.append(f"{method} failed ({type(exc).__name__}: {_first_line(exc)})")
                log.warning("%s failed: %s", method, _first_line(exc))
    try:
        model = onnx.shape_inference.infer_shapes(fileio.load_model(model_path))
    except Exception as exc:  # onnx raises InferenceError and protobuf errors
        raise OnnxmendError(
            f"Pre-processing for quantization failed ({'; '.join(notes)}) and ONNX shape inference failed too "
            f"({_first_line(exc)}); run `onnxmend fix` on the model first."
        ) from exc
    notes.append("fell back to plain ONNX shape inference (no ORT optimisation)")
    return Prepared(_named(model), "onnx.shape_inference", notes)


def _named(model: onnx.ModelProto) -> onnx.ModelProto:
    """Give unnamed nodes stable names: the plan and --exclude-nodes refer to nodes by name."""
    taken = {n.name for n in model.graph.node if n.name}
    for index, node in enumerate(model.graph.node):
        if not node.name:
            name = f"{node.op_type}_{index}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)
    return model


def _is_large(path: Path) -> bool:
    """Whether the model with its external data reaches the size past which we keep weights external."""
    proto = onnx.load(str(path), load_external_data=False)
    size = path.stat().st_size
    locations = {
        entry.value for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL
        for entry in t.external_data if entry.key == "location"
    }
    size += sum((path.parent / loc).stat().st_size for loc in locations if (path.parent / loc).exists())
    return size >= fileio.EXTERNAL_DATA_THRESHOLD


def run_quantizer(prepared: onnx.ModelProto, plan: QuantPlan) -> onnx.ModelProto:
    """quantize_dynamic on exactly the planned nodes (an empty nodes_to_quantize would mean *all* nodes)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    selected = plan.selected
    if not selected:
        raise OnnxmendError("The quantization plan selects no node (no constant-weight MatMul/Gemm/Gather); "
                            "nothing to quantize, see the plan for each node's reason.")
    # ORT turns Gemm into MatMul + Add before quantizing; the MatMul is named NAME_MatMul.
    names = [f"{n.name}_MatMul" if n.op_type == "Gemm" else n.name for n in selected]
    op_types = sorted({"MatMul" if n.op_type == "Gemm" else n.op_type for n in selected})
    large = prepared.ByteSize() >= fileio.EXTERNAL_DATA_THRESHOLD
    with tempfile.TemporaryDirectory(prefix="onnxmend-quant-") as tmp:
        src, out = Path(tmp) / "fp32.onnx", Path(tmp) / "int8.onnx"
        onnx.save_model(prepared, str(src), save_as_external_data=large, location="fp32.onnx.data")
        try:
            with _quiet_root_logger():
                quantize_dynamic(
                    src, out, op_types_to_quantize=op_types, nodes_to_quantize=names,
                    per_channel=plan.per_channel, reduce_range=plan.reduce_range,
                    weight_type=QuantType.QInt8 if plan.weight_type == "int8" else QuantType.QUInt8,
                    use_external_data_format=large,
                )
        except Exception as exc:  # the quantizer asserts and raises ValueError/RuntimeError alike
            raise OnnxmendError(f"onnxruntime's quantize_dynamic failed: {_first_line(exc)}") from exc
        return onnx.load(str(out))


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    """ORT's quantizer logs one INFO line per tensor (and a pre-processing hint) on the root logger."""
    root = logging.getLogger()
    level = root.level
    root.setLevel(max(level, logging.ERROR))
    try:
        yield
    finally:
        root.setLevel(level)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0][:300] if lines else type(exc).__name__


def resolve_provider(requested: Literal["auto", "cpu", "cuda"]) -> tuple[Target, str]:
    """auto: CUDA when onnxruntime has it and a session starts, else CPU; the reason says which and why."""
    from onnxmend.runtime.session import cuda_unavailable_reason

    if requested == "cpu":
        return "cpu", "--provider cpu"
    reason = cuda_unavailable_reason()
    if reason is None:
        return "cuda", "the CUDA provider is present and a session starts"
    if requested == "cuda":
        raise OnnxmendError(f"--provider cuda was given but {reason}.")
    return "cpu", f"CPU because {reason}"


@dataclass
class QuantizeResult:
    paths: ArtifactPaths
    contents: ArtifactContents
    manifest: dict[str, object]

    @property
    def passed(self) -> bool:
        return self.contents.passed

    @property
    def plan(self) -> QuantPlan:
        return self.contents.plan


def quantize_model(
    model_path: str | Path, out_dir: str | Path, overrides: PlanOverrides = PlanOverrides(),
    provider: Literal["auto", "cpu", "cuda"] = "auto", source: str | Export | None = None,
    thresholds: Thresholds = Thresholds(), layers: bool = False, batches: int = 3, seed: int = 0,
    latency_runs: int = 20, threads: int = 2, on_plan: Callable[[QuantPlan], None] | None = None,
    report_name: str = "report.md",
) -> QuantizeResult:
    """Pre-process, plan, quantize, gate and write the artifact folder; the input file is never modified.

    ``on_plan`` sees the plan before the quantizer runs (the CLI prints it). A failing gate still writes
    every file; check ``result.passed``.
    """
    model_path, out_dir = Path(model_path), Path(out_dir)
    timings: dict[str, float] = {}
    clock = time.perf_counter()
    fp32 = fileio.load_model(model_path)
    paths = ArtifactPaths.inside(out_dir, model_path, report_name)
    target, provider_why = resolve_provider(provider)
    prepared = preprocess(model_path)
    plan = build_plan(prepared.model, target, overrides)
    plan.reasons["provider"] = provider_why
    if on_plan:
        on_plan(plan)
    timings["preprocess_and_plan"], clock = time.perf_counter() - clock, time.perf_counter()
    int8 = run_quantizer(prepared.model, plan)
    timings["quantize"], clock = time.perf_counter() - clock, time.perf_counter()
    feeds, source_runs, source_label = gate_inputs(fp32, source, batches, seed)
    vs_fp32, vs_source = gate_accuracy(fp32, int8, feeds, target, thresholds, source_runs, source_label)
    layer_report = layer_errors(prepared.model, int8, feeds[0]) if layers else None
    timings["gate"], clock = time.perf_counter() - clock, time.perf_counter()
    placement = node_placement(int8, target, feeds[0])
    latency = measure_latency(fp32, int8, feeds[0], provider=target, runs=latency_runs, threads=threads) \
        if latency_runs else None
    timings["placement_and_latency"] = time.perf_counter() - clock
    contents = ArtifactContents(model_path, plan, prepared.method, prepared.notes, thresholds, vs_fp32, vs_source,
                                layer_report, placement, latency, timings)
    manifest = write_artifacts(paths, int8, contents)
    return QuantizeResult(paths, contents, manifest)
