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
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Literal

import onnx

from onnxmend.core import fileio
from onnxmend.core.errors import OnnxmendError, first_line
from onnxmend.runtime.quantize.plan import QuantPlan, Target

log = logging.getLogger(__name__)


class NothingToQuantize(OnnxmendError):
    """The plan selects no node: there is no int8 artifact worth writing (the gate's "no gain")."""


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
                notes.append(f"{method} failed ({type(exc).__name__}: {first_line(exc)})")
                log.warning("%s failed: %s", method, first_line(exc))
    try:
        model = onnx.shape_inference.infer_shapes(fileio.load_model(model_path))
    except Exception as exc:  # onnx raises InferenceError and protobuf errors
        raise OnnxmendError(
            f"Pre-processing for quantization failed ({'; '.join(notes)}) and ONNX shape inference failed too "
            f"({first_line(exc)}); run `onnxmend fix` on the model first."
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
        raise NothingToQuantize("The quantization plan selects no node (no constant-weight MatMul/Gemm/Gather, "
                                "and no 1x1 Conv): nothing to quantize; the plan gives each node's reason.")
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
            raise OnnxmendError(f"onnxruntime's quantize_dynamic failed: {first_line(exc)}") from exc
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


