"""The checks an int8 artifact must pass: accuracy against fp32 (and the source), where it runs, how fast.

Accuracy is measured on several seeded batches concatenated per output: cosine similarity, SQNR in dB
(10·log10(Σref² / Σ(ref − q)²); ``None`` when the two are identical), max abs difference and, for
classifier-shaped outputs ([N, K] with K ≥ 2), top-1 agreement. The gate fails when any output falls under
a threshold; the caller still writes its report.

``layer_errors`` exposes every float tensor the fp32 and int8 graphs share by name as an extra output of
both and compares them in graph order, to show where the error enters.

Placement runs one profiled inference and reads the provider of every kernel from the profile, which is how
nodes that fall back from CUDA to CPU are listed (profiling is what ORT itself reports per kernel; its
verbose log lines are not a stable interface).
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal, Mapping, Sequence

import numpy as np
import onnx

from onnxmend.core.errors import OnnxmendError
from onnxmend.exporters.base import Export
from onnxmend.runtime.inputs import specs_from_model, synthesize
from onnxmend.core.interface import adapt_feeds, restore_outputs
from onnxmend.runtime.session import create_session, session_options

log = logging.getLogger(__name__)

Feeds = Mapping[str, np.ndarray]
Target = Literal["cpu", "cuda"]


@dataclass(frozen=True)
class Thresholds:
    min_cosine: float = 0.99
    min_sqnr: float | None = None
    min_top1: float | None = None


@dataclass(frozen=True)
class OutputAccuracy:
    name: str
    cosine: float
    sqnr_db: float | None  # None: no quantization error at all
    max_abs: float
    top1: float | None  # None: not classifier-shaped


@dataclass
class AccuracyReport:
    reference: str  # "fp32 ONNX" or "source (torch)"
    batches: int
    outputs: list[OutputAccuracy]
    failures: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "passed": self.passed}


def output_accuracy(name: str, reference: np.ndarray, actual: np.ndarray) -> OutputAccuracy:
    ref = np.asarray(reference, dtype=np.float64)
    act = np.asarray(actual, dtype=np.float64).reshape(ref.shape)
    noise = float(np.sum((ref - act) ** 2))
    signal = float(np.sum(ref ** 2))
    sqnr = None if noise == 0.0 else (10.0 * math.log10(signal / noise) if signal > 0 else -math.inf)
    norms = float(np.linalg.norm(ref)) * float(np.linalg.norm(act))
    if noise == 0.0 or not norms:
        cosine = float(noise == 0.0)
    else:
        cosine = float(np.dot(ref.ravel(), act.ravel()) / norms)
    top1 = None
    if ref.ndim == 2 and ref.shape[1] >= 2:
        top1 = float(np.mean(np.argmax(ref, axis=1) == np.argmax(act, axis=1)))
    max_abs = float(np.max(np.abs(ref - act))) if ref.size else 0.0
    return OutputAccuracy(name, cosine, sqnr, max_abs, top1)


def measure_accuracy(
    label: str, references: Sequence[Mapping[str, np.ndarray]], actuals: Sequence[Mapping[str, np.ndarray]],
    thresholds: Thresholds,
) -> AccuracyReport:
    """Compare per output over all batches (paired by name, or by order when names differ)."""
    names_ref, names_act = list(references[0]), list(actuals[0])
    pairs = [(n, n) for n in names_ref] if set(names_ref) == set(names_act) else list(zip(names_ref, names_act))
    outputs = []
    for ref_name, act_name in pairs:
        ref = np.concatenate([np.asarray(r[ref_name]).reshape(1, -1) if np.ndim(r[ref_name]) < 2 else r[ref_name]
                              for r in references])
        act = np.concatenate([np.asarray(a[act_name]).reshape(1, -1) if np.ndim(a[act_name]) < 2 else a[act_name]
                              for a in actuals])
        outputs.append(output_accuracy(act_name, ref, act))
    report = AccuracyReport(label, len(references), outputs)
    report.failures = gate_failures(report, thresholds)
    return report


def gate_failures(report: AccuracyReport, thresholds: Thresholds) -> list[str]:
    failures = []
    for out in report.outputs:
        where = f"{out.name} vs {report.reference}"
        if out.cosine < thresholds.min_cosine:
            failures.append(f"{where}: cosine {out.cosine:.5f} < {thresholds.min_cosine}")
        if thresholds.min_sqnr is not None and out.sqnr_db is not None and out.sqnr_db < thresholds.min_sqnr:
            failures.append(f"{where}: SQNR {out.sqnr_db:.1f} dB < {thresholds.min_sqnr} dB")
        if thresholds.min_top1 is not None and out.top1 is not None and out.top1 < thresholds.min_top1:
            failures.append(f"{where}: top-1 agreement {out.top1:.3f} < {thresholds.min_top1}")
    return failures


def gate_inputs(
    fp32: onnx.ModelProto, source: str | Export | None, batches: int, seed: int,
) -> tuple[list[dict[str, np.ndarray]], list[dict[str, np.ndarray]] | None, str]:
    """Seeded feeds for the ONNX models, and the source's outputs on the same inputs when a source is given.

    ``source`` is a SOURCE string (exported here with default options) or an ``Export`` already made.
    """
    if source is None:
        specs = specs_from_model(fp32)
        return [synthesize(specs, seed=seed + i) for i in range(batches)], None, ""
    from onnxmend.exporters import ExportOptions, export

    exported = source if isinstance(source, Export) else export(source, ExportOptions())
    if exported.source_runner is None:
        raise OnnxmendError(f"{exported.source} has no runner in its own framework to compare the int8 model with.")
    raw = [synthesize(exported.inputs, seed=seed + i) for i in range(batches)]
    source_runs = [exported.source_runner(f) for f in raw]
    return [adapt_feeds(f, fp32) for f in raw], source_runs, f"source ({exported.framework})"


def gate_accuracy(
    fp32: onnx.ModelProto, int8: onnx.ModelProto, feeds: list[dict[str, np.ndarray]], target: Target,
    thresholds: Thresholds, source_runs: list[dict[str, np.ndarray]] | None, source_label: str,
) -> tuple[AccuracyReport, AccuracyReport | None]:
    reference = create_session(fp32, provider="cpu", opt_level="disable")
    quantized = create_session(int8, provider=target, opt_level="all")
    int8_runs = [quantized.run(f) for f in feeds]
    vs_fp32 = measure_accuracy("fp32 ONNX", [reference.run(f) for f in feeds], int8_runs, thresholds)
    if source_runs is None:
        return vs_fp32, None
    restored = [restore_outputs(r, fp32) for r in int8_runs]
    return vs_fp32, measure_accuracy(source_label, source_runs, restored, thresholds)


@dataclass(frozen=True)
class LayerError:
    tensor: str
    producer: str  # op type of the node that writes the tensor in the int8 graph
    cosine: float
    sqnr_db: float | None
    max_abs: float


def layer_errors(fp32: onnx.ModelProto, int8: onnx.ModelProto, feeds: Feeds) -> list[LayerError]:
    """Float tensors both graphs compute under the same name, compared in fp32 graph order."""
    inferred = onnx.shape_inference.infer_shapes(fp32)
    float_types = {vi.name for vi in list(inferred.graph.value_info) + list(inferred.graph.output)
                   if vi.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}
    int8_producers = {out: node.op_type for node in int8.graph.node for out in node.output}
    order = [out for node in fp32.graph.node for out in node.output]
    shared = [t for t in order if t in float_types and t in int8_producers]
    ref = _run_with_outputs(fp32, shared, feeds)
    act = _run_with_outputs(int8, shared, feeds)
    errors = []
    for name in shared:
        acc = output_accuracy(name, ref[name], act[name])
        errors.append(LayerError(name, int8_producers[name], acc.cosine, acc.sqnr_db, acc.max_abs))
    return errors


def _run_with_outputs(model: onnx.ModelProto, tensors: Sequence[str], feeds: Feeds) -> dict[str, np.ndarray]:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    present = {o.name for o in copy.graph.output}
    for name in tensors:
        if name not in present:
            copy.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.FLOAT, None))
    return create_session(copy, provider="cpu", opt_level="disable").run(feeds)


@dataclass(frozen=True)
class Latency:
    fp32_ms: float
    int8_ms: float
    runs: int
    threads: int
    provider: str
    method: str = "interleaved fp32/int8 runs after warm-up, perf_counter_ns, median"

    @property
    def speedup(self) -> float:
        return self.fp32_ms / self.int8_ms if self.int8_ms else 0.0

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "speedup": self.speedup}


def measure_latency(
    fp32: onnx.ModelProto | str, int8: onnx.ModelProto | str, feeds: Feeds, provider: str = "cpu",
    runs: int = 20, threads: int = 2, warmup: int = 3,
) -> Latency:
    """Median latency of both models, runs interleaved so machine noise hits them alike."""
    sessions = [create_session(m, provider=provider, threads=threads, opt_level="all") for m in (fp32, int8)]  # type: ignore[arg-type]
    for _ in range(warmup):
        for session in sessions:
            session.run(feeds)
    times: list[list[int]] = [[], []]
    for _ in range(runs):
        for index, session in enumerate(sessions):
            start = time.perf_counter_ns()
            session.run(feeds)
            times[index].append(time.perf_counter_ns() - start)
    fp32_ms, int8_ms = (statistics.median(t) / 1e6 for t in times)
    return Latency(fp32_ms, int8_ms, runs, threads, sessions[1].provider)


@dataclass
class Placement:
    provider: str  # the provider the session was created for
    nodes_by_provider: dict[str, list[str]]

    @property
    def cpu_fallback(self) -> list[str]:
        """Nodes that ran on CPU although the session targets CUDA (empty for a CPU session)."""
        if self.provider != "CUDAExecutionProvider":
            return []
        return self.nodes_by_provider.get("CPUExecutionProvider", [])

    def to_json(self) -> dict[str, object]:
        return {"provider": self.provider, "counts": {p: len(n) for p, n in self.nodes_by_provider.items()},
                "cpu_fallback": self.cpu_fallback}


def node_placement(model: onnx.ModelProto, provider: str, feeds: Feeds) -> Placement:
    """Load ``model`` on ``provider`` ("cpu"/"cuda"), run it once profiled and group kernels by provider."""
    import onnxruntime as ort

    from onnxmend.runtime.session import cuda_provider_options

    with tempfile.TemporaryDirectory(prefix="onnxmend-profile-") as tmp:
        opts = session_options(opt_level="all")
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "quant")
        providers: list[object] = ["CPUExecutionProvider"]
        if provider == "cuda":
            providers.insert(0, ("CUDAExecutionProvider", cuda_provider_options(False)))
        session = ort.InferenceSession(model.SerializeToString(), opts, providers=providers)
        names = [i.name for i in session.get_inputs()]
        session.run(None, {n: feeds[n] for n in names})
        profile = Path(session.end_profiling())
        events = json.loads(profile.read_text(encoding="utf-8"))
    return Placement(session.get_providers()[0], parse_profile(events))


def parse_profile(events: Sequence[Mapping[str, object]]) -> dict[str, list[str]]:
    """Node names per execution provider from onnxruntime profile events (kernel-time events only)."""
    placed: dict[str, list[str]] = {}
    for event in events:
        args = event.get("args")
        name = str(event.get("name", ""))
        if event.get("cat") != "Node" or not isinstance(args, dict) or not name.endswith("_kernel_time"):
            continue
        node = name[: -len("_kernel_time")]
        bucket = placed.setdefault(str(args.get("provider", "unknown")), [])
        if node not in bucket:
            bucket.append(node)
    return placed
