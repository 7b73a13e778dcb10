"""The accuracy an int8 artifact must keep: against the fp32 model and, when given, the source framework.

Accuracy is measured on several seeded batches (or the user's loaded samples: the quantization itself stays
dynamic, calibration-free; only the gate sees the data) concatenated per output by the one
:class:`~onnxmend.runtime.compare.Comparator` with :class:`~onnxmend.runtime.compare.Thresholds`: cosine
similarity, SQNR in dB (10·log10(Σref² / Σ(ref − q)²); ``None`` when the two are identical), max abs
difference and, for classifier-shaped outputs ([N, K] with K ≥ 2), top-1 agreement. The gate fails when any
output falls under a threshold; the caller still writes its report.

``layer_errors`` exposes every float tensor the fp32 and int8 graphs share by name as an extra output of
both and compares them in graph order, to show where the error enters.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import onnx

from onnxmend.core.graph import infer_shapes
from onnxmend.core.specs import specs_from_model
from onnxmend.runtime.compare import Comparator, Comparison, Thresholds
from onnxmend.runtime.inputs import synthesize
from onnxmend.runtime.quantize.plan import Target
from onnxmend.runtime.runners import OnnxRunner, Runner, SourceLayout, onnx_runner

Feeds = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class GateInputs:
    """Seeded source-layout feeds, and the source's outputs on them when a source runner was given."""

    feeds: list[dict[str, np.ndarray]]
    source_runs: list[dict[str, np.ndarray]] | None
    source_label: str


def gate_inputs(fp32: onnx.ModelProto, source: Runner | None, batches: int, seed: int,
                samples: Sequence[Mapping[str, np.ndarray]] | None = None) -> GateInputs:
    """Seeded feeds (in the source's layout; or the loaded ``samples``) and, with a source runner, its
    outputs on the same inputs."""
    if samples:
        feeds = [dict(s) for s in samples]
    else:
        specs = source.inputs if source is not None else onnx_runner(fp32).inputs
        feeds = [synthesize(specs, seed=seed + i) for i in range(batches)]
    if source is None:
        return GateInputs(feeds, None, "")
    return GateInputs(feeds, [source.run(f) for f in feeds], f"source ({source.framework})")


def accuracy_runs(fp32: onnx.ModelProto, int8: onnx.ModelProto, inputs: GateInputs,
                  target: Target) -> dict[str, list[dict[str, np.ndarray]]]:
    """fp32 on the CPU (optimisations off) and int8 on the target, on every gate input (source layout)."""
    reference = onnx_runner(fp32, provider="cpu", opt_level="disable")
    # quantize_dynamic keeps no metadata: the int8 graph has fp32's interface, so fp32's record adapts it.
    quantized = SourceLayout(OnnxRunner(int8, provider=target, opt_level="all"), fp32)
    return {"fp32": [reference.run(f) for f in inputs.feeds], "int8": [quantized.run(f) for f in inputs.feeds]}


def gate_accuracy(fp32: onnx.ModelProto, int8: onnx.ModelProto, inputs: GateInputs, target: Target,
                  thresholds: Thresholds) -> tuple[Comparison, Comparison | None]:
    """int8 on the target provider vs fp32 on the CPU (optimisations off), and vs the source when given."""
    runs = accuracy_runs(fp32, int8, inputs, target)
    int8_runs = runs["int8"]
    vs_fp32 = Comparator(thresholds, reference="fp32 ONNX").compare_batches(runs["fp32"], int8_runs)
    if inputs.source_runs is None:
        return vs_fp32, None
    vs_source = Comparator(thresholds, reference=inputs.source_label).compare_batches(inputs.source_runs, int8_runs)
    return vs_fp32, vs_source


@dataclass(frozen=True)
class LayerError:
    tensor: str
    producer: str  # op type of the node that writes the tensor in the int8 graph
    cosine: float
    sqnr_db: float | None
    max_abs: float


def layer_errors(fp32: onnx.ModelProto, int8: onnx.ModelProto, feeds: Feeds) -> list[LayerError]:
    """Float tensors both graphs compute under the same name, compared in fp32 graph order.

    ``feeds`` are in the layout ``fp32`` itself takes (adapted from the source's)."""
    inferred = infer_shapes(fp32)
    float_types = {vi.name for vi in list(inferred.graph.value_info) + list(inferred.graph.output)
                   if vi.type.tensor_type.elem_type == onnx.TensorProto.FLOAT}
    int8_producers = {out: node.op_type for node in int8.graph.node for out in node.output}
    order = [out for node in fp32.graph.node for out in node.output]
    shared = [t for t in order if t in float_types and t in int8_producers]
    model_feeds = {s.name: feeds[s.name] for s in specs_from_model(fp32)}
    ref = OnnxRunner(fp32).capture(model_feeds, shared)
    act = OnnxRunner(int8).capture(model_feeds, shared)
    comparator = Comparator(Thresholds())
    errors = []
    for name in shared:
        o = comparator.compare_arrays(name, ref[name], act[name])
        errors.append(LayerError(name, int8_producers[name], o.cosine, o.sqnr_db, o.max_abs))
    return errors
