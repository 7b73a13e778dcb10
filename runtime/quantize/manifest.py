"""The quantized artifact folder: ``model.onnx``, ``model.int8.onnx``, ``manifest.json`` and ``report.md``.

Every file is written atomically (``onnxmend.core.fileio``). The input model is never modified: when ``-o`` is
the input's own folder and the input is already named ``model.onnx`` it is left in place rather than copied
onto itself, and no artifact may land on the input's path. Models past ``fileio.EXTERNAL_DATA_THRESHOLD`` are
saved with external data (``NAME.onnx.data``), which the manifest hashes like any other file.
"""

from __future__ import annotations

import datetime
import hashlib
import logging
import platform
import shutil
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import onnx

from onnxmend.core import fileio
from onnxmend.core.errors import OnnxmendError
from onnxmend.runtime.compare import Comparison, Thresholds
from onnxmend.runtime.data import InputsUsed
from onnxmend.runtime.quantize.accuracy import LayerError
from onnxmend.runtime.quantize.performance import Latency, Placement
from onnxmend.runtime.quantize.worth import Worth, judge

if TYPE_CHECKING:
    from onnxmend.runtime.quantize.plan import QuantPlan

log = logging.getLogger(__name__)

FORMAT = "onnxmend.quantize/1"
_WORST_LAYERS = 10


@dataclass(frozen=True)
class ArtifactPaths:
    out_dir: Path
    fp32: Path
    int8: Path
    manifest: Path
    report: Path

    @classmethod
    def inside(cls, out_dir: Path, input_path: Path, report_name: str = "report.md") -> ArtifactPaths:
        """``report_name`` lets ``convert --quantize`` keep its own report.md beside the int8 artifact."""
        paths = cls(out_dir, out_dir / "model.onnx", out_dir / "model.int8.onnx",
                    out_dir / "manifest.json", out_dir / report_name)
        source = input_path.resolve()
        clobbered = [p.name for p in (paths.int8, paths.manifest, paths.report) if p.resolve() == source]
        if clobbered:
            raise OnnxmendError(f"Writing {clobbered[0]} into {out_dir} would overwrite the input model; "
                                "choose another -o folder.")
        return paths


@dataclass
class ArtifactContents:
    """Everything the manifest and the report state about one quantization."""

    input_path: Path
    plan: QuantPlan
    preprocess_method: str
    preprocess_notes: list[str]
    thresholds: Thresholds
    vs_fp32: Comparison
    vs_source: Comparison | None
    layers: list[LayerError] | None
    placement: Placement
    latency: Latency | None
    timings_s: dict[str, float]
    weight_share: float = 0.0  # of the fp32 weights, what the planned nodes hold
    prepared: list[str] = field(default_factory=list)  # how the graph was prepared for int8, if it was
    allow_no_gain: bool = False  # the user accepts an artifact that is not smaller or not faster
    worth: Worth | None = None  # judged by write_artifacts once the file sizes are known
    inputs: InputsUsed | None = None  # which inputs the gate used: synthetic or loaded

    @property
    def accurate(self) -> bool:
        return self.vs_fp32.passed and (self.vs_source is None or self.vs_source.passed)

    @property
    def verdict(self) -> str:
        """``fail`` (accuracy), ``no-gain`` (accurate, not worth shipping) or ``pass``."""
        if not self.accurate:
            return "fail"
        return "no-gain" if self.worth is not None and not self.worth.worth_shipping else "pass"

    @property
    def passed(self) -> bool:
        return self.verdict == "pass" or (self.verdict == "no-gain" and self.allow_no_gain)

    @property
    def failures(self) -> list[str]:
        return self.vs_fp32.failures + (self.vs_source.failures if self.vs_source else [])


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def copy_input(input_path: Path, target: Path) -> bool:
    """Copy the fp32 input to ``target`` unless it already is that file; returns whether it copied."""
    if input_path.resolve() == target.resolve():
        log.info("%s is already the artifact's model.onnx; left in place.", input_path)
        return False
    if _external_locations(input_path):
        # The .onnx alone would point at data files that are not beside the copy; re-save with its data.
        fileio.save_model(onnx.load(str(input_path)), target)
        return True
    with fileio.atomic_path(target) as tmp:
        shutil.copyfile(input_path, tmp)
    return True


def _external_locations(path: Path) -> list[str]:
    proto = onnx.load(str(path), load_external_data=False)
    return sorted({e.value for t in proto.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL
                   for e in t.external_data if e.key == "location"})


def artifact_files(model_path: Path) -> list[Path]:
    """The model file and the external-data files it references."""
    return [model_path] + [model_path.parent / loc for loc in _external_locations(model_path)]


def write_artifacts(paths: ArtifactPaths, int8: onnx.ModelProto, contents: ArtifactContents) -> dict[str, object]:
    """Write model.onnx (copy), model.int8.onnx, report.md, then manifest.json; returns the manifest."""
    copy_input(contents.input_path, paths.fp32)
    fileio.save_model(int8, paths.int8)
    files = {p.name: file_entry(p) for model in (paths.fp32, paths.int8) for p in artifact_files(model)}
    fp32_bytes, int8_bytes = model_bytes(files, "model.onnx"), model_bytes(files, "model.int8.onnx")
    contents.worth = judge(int8_bytes / fp32_bytes if fp32_bytes else None, contents.weight_share, contents.plan,
                           contents.latency)
    fileio.write_text(paths.report, render_report(contents, files, int8))
    files[paths.report.name] = file_entry(paths.report)
    manifest = build_manifest(contents, files, int8)
    fileio.write_json(paths.manifest, manifest)
    return manifest


def file_entry(path: Path) -> dict[str, object]:
    return {"sha256": sha256_file(path), "bytes": path.stat().st_size}


def model_bytes(files: dict[str, dict[str, object]], stem: str) -> int:
    """Total bytes of ``stem`` (model.onnx / model.int8.onnx) and its external data."""
    return sum(int(entry["bytes"]) for name, entry in files.items() if name == stem or name == f"{stem}.data")  # type: ignore[call-overload]


def build_manifest(contents: ArtifactContents, files: dict[str, dict[str, object]], int8: onnx.ModelProto) -> dict[str, object]:
    fp32_bytes, int8_bytes = model_bytes(files, "model.onnx"), model_bytes(files, "model.int8.onnx")
    return {
        "format": FORMAT,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "input": {"path": str(contents.input_path), **file_entry(contents.input_path)},
        "files": files,
        "size_ratio": int8_bytes / fp32_bytes if fp32_bytes else None,
        "opset": {imp.domain or "ai.onnx": imp.version for imp in int8.opset_import},
        "versions": versions(),
        "provider": contents.placement.provider,
        "preprocess": {"method": contents.preprocess_method, "notes": contents.preprocess_notes},
        "plan": contents.plan.to_json(),
        "verdict": contents.verdict,
        "passed": contents.passed,
        "worth": contents.worth.to_json() if contents.worth else None,
        "allow_no_gain": contents.allow_no_gain,
        "prepared": contents.prepared,
        "inputs": contents.inputs.to_json() if contents.inputs else None,
        "accuracy": {
            "passed": contents.accurate, "failures": contents.failures,
            "thresholds": {"min_cosine": contents.thresholds.min_cosine, "min_sqnr": contents.thresholds.min_sqnr,
                           "min_top1": contents.thresholds.min_top1},
            "vs_fp32": accuracy_json(contents.vs_fp32),
            "vs_source": accuracy_json(contents.vs_source) if contents.vs_source else None,
            "layers": [vars(e) for e in contents.layers] if contents.layers is not None else None,
        },
        "placement": contents.placement.to_json(),
        "latency": contents.latency.to_json() if contents.latency else None,
        "timings_s": contents.timings_s,
    }


def versions() -> dict[str, str]:
    found = {"python": platform.python_version(), "numpy": np.__version__, "onnx": onnx.__version__}
    for package in ("onnxruntime", "onnxruntime-gpu", "onnxmend"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return found


def render_report(contents: ArtifactContents, files: dict[str, dict[str, object]], int8: onnx.ModelProto) -> str:
    plan = contents.plan
    fp32_bytes, int8_bytes = model_bytes(files, "model.onnx"), model_bytes(files, "model.int8.onnx")
    verdict = {"pass": "PASS", "fail": "FAIL (accuracy)", "no-gain": "NO GAIN"}[contents.verdict]
    if contents.verdict == "no-gain" and contents.allow_no_gain:
        verdict += " (accepted with --allow-no-gain)"
    lines = [
        f"# Quantized artifact: {contents.input_path.name}", "",
        f"**Gate: {verdict}** · provider {contents.placement.provider} · "
        f"size {int8_bytes / 1e6:.2f} MB / {fp32_bytes / 1e6:.2f} MB = {int8_bytes / max(fp32_bytes, 1):.3f}x",
    ]
    if contents.latency:
        lat = contents.latency
        lines.append(f"· latency fp32 {lat.fp32_ms:.2f} ms, int8 {lat.int8_ms:.2f} ms ({lat.speedup:.2f}x, "
                     f"{lat.threads} threads, median of {lat.runs})")
    lines += [""] + [f"- {f}" for f in contents.failures]
    if contents.worth:
        lines += [f"- not worth shipping: {f}" for f in contents.worth.shortfalls]
        lines += [f"- {n}" for n in contents.worth.notes]
    lines += ["", "## Plan", "", f"Pre-processing: {contents.preprocess_method}."]
    lines += [f"- prepared for int8: {p}" for p in contents.prepared]
    lines += [f"- note: {n}" for n in contents.preprocess_notes]
    lines += ["", "| setting | value | why |", "|---|---|---|"]
    settings = {"op_types": ", ".join(plan.op_types), "weight_type": plan.weight_type,
                "per_channel": plan.per_channel, "reduce_range": plan.reduce_range}
    lines += [f"| {k} | {v} | {plan.reasons.get(k, '')} |" for k, v in settings.items()]
    lines += ["", *[f"- **risk:** {r}" for r in plan.risks]]
    lines += ["", f"{len(plan.selected)} of {len(plan.nodes)} candidate nodes quantized:", "",
              "| node | op | quantized | reason |", "|---|---|---|---|"]
    lines += [f"| {n.name} | {n.op_type} | {'yes' if n.quantize else 'no'} | {n.reason} |" for n in plan.nodes]
    lines += ["", "## Accuracy", ""]
    lines += [f"Inputs: {contents.inputs.summary}.", ""] if contents.inputs else []
    lines += _accuracy_table([contents.vs_fp32] + ([contents.vs_source] if contents.vs_source else []))
    if contents.layers:
        lines += ["", "## Per-layer error", ""] + _layer_lines(contents.layers, contents.thresholds.min_cosine)
    lines += ["", "## Placement", ""]
    counts = ", ".join(f"{p}: {len(n)}" for p, n in contents.placement.nodes_by_provider.items())
    lines.append(f"Kernels per provider: {counts or 'none recorded'}.")
    if contents.placement.cpu_fallback:
        lines.append(f"Fell back to CPU: {', '.join(contents.placement.cpu_fallback)}.")
    lines += ["", "## Files", "", "| file | bytes | sha256 |", "|---|---|---|"]
    lines += [f"| {name} | {e['bytes']} | `{e['sha256']}` |" for name, e in files.items()]
    return "\n".join(lines) + "\n"


def _fmt(value: float | None, spec: str) -> str:
    return "exact" if value is None else format(value, spec)


def _accuracy_table(reports: list[Comparison]) -> list[str]:
    lines = ["| vs | output | cosine | SQNR dB | max abs | top-1 | batches |", "|---|---|---|---|---|---|---|"]
    for rep in reports:
        for out in rep.outputs:
            top1 = "-" if out.top1 is None else f"{out.top1:.3f}"
            lines.append(f"| {rep.reference} | {out.name} | {out.cosine:.5f} | {_fmt(out.sqnr_db, '.1f')} | "
                         f"{out.max_abs:.4g} | {top1} | {rep.batches} |")
    return lines


def _layer_lines(layers: list[LayerError], min_cosine: float) -> list[str]:
    first = next((e for e in layers if e.cosine < min_cosine), None)
    lines = [f"First tensor under cosine {min_cosine}: "
             f"{f'`{first.tensor}` ({first.producer})' if first else 'none'}.", "",
             "| tensor | producer | cosine | SQNR dB | max abs |", "|---|---|---|---|---|"]
    worst = sorted(layers, key=lambda e: e.cosine)[:_WORST_LAYERS]
    lines += [f"| {e.tensor} | {e.producer} | {e.cosine:.5f} | {_fmt(e.sqnr_db, '.1f')} | {e.max_abs:.4g} |" for e in worst]
    return lines


def accuracy_json(report: Comparison) -> dict[str, object]:
    """One accuracy report as the manifest states it: the scores per output and the gate's failures."""
    return {
        "reference": report.reference, "batches": report.batches, "passed": report.passed,
        "failures": report.failures,
        "outputs": [{"name": o.name, "cosine": o.cosine, "sqnr_db": o.sqnr_db, "max_abs": o.max_abs, "top1": o.top1}
                    for o in report.outputs],
    }
