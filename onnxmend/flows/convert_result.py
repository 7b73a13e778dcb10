"""What ``convert`` is asked (:class:`ConvertOptions`) and what it gives back (:class:`ConvertResult`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from onnxmend import __version__
from onnxmend.core.interface_diff import TensorChange
from onnxmend.exporters import Export, ExportOptions
from onnxmend.flows.layout import LayoutChoice
from onnxmend.flows.quantize import QuantizeResult
from onnxmend.passes.infra.growth import DEFAULT_MAX_GROWTH
from onnxmend.passes.infra.records import PipelineReport
from onnxmend.runtime.bench.results import BenchResult
from onnxmend.runtime.compare import DEFAULT_ATOL, DEFAULT_RTOL
from onnxmend.runtime.data import DataOptions, InputsUsed
from onnxmend.runtime.inspect import Inspection
from onnxmend.runtime.layers.report import LayerReport
from onnxmend.runtime.validate import Validation


@dataclass(frozen=True)
class ConvertOptions:
    export: ExportOptions = field(default_factory=ExportOptions)
    preset: str = "fix"
    passes: str | None = None
    verify: bool = True
    layout: LayoutChoice = "auto"
    atol: float = DEFAULT_ATOL
    rtol: float = DEFAULT_RTOL
    seed: int = 0
    provider: Literal["auto", "cpu", "cuda"] = "auto"
    threads: int = 0
    quantize: bool = False  # also write the int8 artifact beside model.onnx
    bench: bool = False  # also benchmark raw, fixed (and int8) graphs and the source
    allow_no_gain: bool = False  # accept an int8 artifact that is not smaller or not faster than fp32
    force: bool = False  # write into a folder holding files onnxmend did not write
    # The written model keeps the source's interface exactly: names, layout, dynamic dims (flows.interface).
    keep_interface: bool = False
    # A rewrite that grows the weights past this many times the raw export's is refused (inf: no limit).
    max_growth: float = DEFAULT_MAX_GROWTH
    data: DataOptions = field(default_factory=DataOptions)  # --load-inputs, --image-preprocess, --save-outputs


@dataclass
class ConvertResult:
    source: str
    out_dir: Path
    export: Export
    pipeline: PipelineReport
    raw_validation: Validation
    validation: Validation
    before: Inspection
    after: Inspection
    layout: str
    seconds: dict[str, float]
    layout_choice: LayoutChoice = "auto"
    quantized: QuantizeResult | None = None
    benchmark: BenchResult | None = None
    int8_skipped: str = ""  # why convert --quantize wrote no int8 artifact (nothing to quantize)
    allow_no_gain: bool = False
    interface: list[TensorChange] = field(default_factory=list)
    keep_interface: bool = False
    gate_inputs: InputsUsed | None = None  # what the pass gate checked
    saved_outputs: Path | None = None
    layers: LayerReport | None = None  # run when parity fails: the first source layer that diverges

    @property
    def exit_code(self) -> int:
        """0 parity, 1 mismatch (or a failing int8 gate: that artifact is not fit to ship), 3 not verified."""
        if self.validation.verdict == "unverified":
            return 3
        int8_ok = (self.quantized.passed if self.quantized is not None
                   else not self.int8_skipped or self.allow_no_gain)
        return 0 if self.validation.verdict == "pass" and int8_ok else 1

    def to_json(self) -> dict[str, object]:
        data: dict[str, object] = {
            "onnxmend": __version__, "source": self.source, "framework": self.export.framework,
            "exporter": self.export.exporter, "layout": self.layout,
            "layout_choice": self.layout_choice, "keep_interface": self.keep_interface,
            "interface": [c.to_json() for c in self.interface],
            "inputs": [s.to_json() for s in self.export.inputs], "notes": self.export.notes,
            "inputs_used": self.validation.inputs.to_json() if self.validation.inputs else None,
            "gate_inputs_used": self.gate_inputs.to_json() if self.gate_inputs else None,
            "saved_outputs": str(self.saved_outputs) if self.saved_outputs else None,
            "verdict": self.validation.verdict, "validation": self.validation.to_json(),
            "raw_validation": self.raw_validation.to_json(), "passes": self.pipeline.to_json(),
            "before": self.before.to_json(), "after": self.after.to_json(),
            "seconds": {k: round(v, 3) for k, v in self.seconds.items()},
            "artifacts": {"raw": "raw.onnx", "model": "model.onnx", "report_md": "report.md"},
        }
        if self.quantized is not None:
            data["quantize"] = {"passed": self.quantized.passed, "verdict": self.quantized.contents.verdict,
                                "manifest": self.quantized.manifest}
        elif self.int8_skipped:
            data["quantize"] = {"passed": self.allow_no_gain, "verdict": "no-gain", "reason": self.int8_skipped}
        if self.benchmark is not None:
            data["bench"] = self.benchmark.to_json()
        if self.layers is not None:
            data["layers"] = {"headline": self.layers.headline(), "first_wrong": self.layers.first_wrong,
                              "coverage": round(self.layers.layer_map.coverage, 4),
                              "report": "layers.md", "json": "layers.json", "plot": "layers.png"}
        return data
