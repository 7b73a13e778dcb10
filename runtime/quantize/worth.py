"""Whether an int8 artifact is worth shipping: smaller and not slower than the fp32 graph on the target.

Accuracy alone passes artifacts nobody should deploy: a fixed graph whose MatMuls became 1×1 Convs
quantizes to 0.98× its size, and a model where one tiny Gemm is all that changed "passes" at size 1.000.
:func:`judge` states each shortfall in a sentence:

- **size**: the int8 files must be at most :data:`MAX_SIZE_RATIO` of the fp32 files — else the plan
  quantized too little of the weights to matter (the share is stated);
- **speed**: the int8 graph must run at least :data:`MIN_SPEEDUP` × the fp32 graph's speed on the target
  provider (median of interleaved runs; the 5 % margin is the run-to-run noise of a busy machine), when
  timing ran (``--runs 0`` skips it, and the verdict says speed was not measured).

An artifact with a shortfall is ``no-gain``: reported, and a failure unless the user accepts it
(``--allow-no-gain``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import onnx

from onnxmend.runtime.quantize.performance import Latency
from onnxmend.runtime.quantize.plan import QuantPlan

MAX_SIZE_RATIO = 0.8
MIN_SPEEDUP = 0.95


@dataclass(frozen=True)
class Worth:
    size_ratio: float | None
    weight_share: float  # share of the fp32 float weight bytes held by the nodes the plan quantized
    speedup: float | None  # None when timing was skipped
    shortfalls: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def worth_shipping(self) -> bool:
        return not self.shortfalls

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "worth_shipping": self.worth_shipping,
                "limits": {"max_size_ratio": MAX_SIZE_RATIO, "min_speedup": MIN_SPEEDUP}}


def weight_share(model: onnx.ModelProto, plan: QuantPlan) -> float:
    """The share of ``model``'s float initializer bytes that the planned nodes' weights hold."""
    sizes = {t.name: _bytes(t) for t in model.graph.initializer
             if t.data_type in (onnx.TensorProto.FLOAT, onnx.TensorProto.FLOAT16, onnx.TensorProto.DOUBLE)}
    selected = {n.name for n in plan.selected}
    weights = {node.input[0 if node.op_type == "Gather" else 1] for node in model.graph.node
               if node.name in selected and len(node.input) > 1}
    total = sum(sizes.values())
    return sum(sizes.get(w, 0) for w in weights) / total if total else 0.0


def _bytes(tensor: onnx.TensorProto) -> int:
    itemsize = {onnx.TensorProto.FLOAT16: 2, onnx.TensorProto.DOUBLE: 8}.get(tensor.data_type, 4)
    return int(np.prod(tensor.dims, dtype=np.int64)) * itemsize


def judge(size_ratio: float | None, share: float, plan: QuantPlan, latency: Latency | None) -> Worth:
    shortfalls, notes = [], []
    if size_ratio is not None and size_ratio > MAX_SIZE_RATIO:
        shortfalls.append(
            f"the int8 files are {size_ratio:.2f}× the fp32 files (at most {MAX_SIZE_RATIO} is worth shipping): the "
            f"plan quantized {len(plan.selected)} of {len(plan.nodes)} candidate nodes, {share:.1%} of the weights; "
            "the plan gives each other node's reason")
    speedup = latency.speedup if latency else None
    if latency is None:
        notes.append("speed not measured (--runs 0), so not judged")
    elif latency.speedup < MIN_SPEEDUP:
        shortfalls.append(
            f"int8 runs at {latency.speedup:.2f}× the fp32 graph's speed on {latency.provider} (fp32 "
            f"{latency.fp32_ms:.2f} ms, int8 {latency.int8_ms:.2f} ms, median of {latency.runs} interleaved runs, "
            f"{latency.threads} threads)")
    return Worth(size_ratio, share, speedup, shortfalls, notes)
