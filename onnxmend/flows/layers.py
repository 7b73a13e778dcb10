"""``validate --layers``: per-layer parity of an ONNX file against its source, and the same run from
``convert`` when parity fails. Writes ``report.json``, ``report.md`` and ``layers.png`` (``layers.*`` inside
a convert folder, beside convert's own report)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

import onnx

from onnxmend.core.fileio import load_model, write_json, write_text
from onnxmend.core.graph import model_opset
from onnxmend.core.outputs import claim_dir
from onnxmend.exporters import Export, ExportOptions, export
from onnxmend.flows.layout import choose_layout, layout_context
from onnxmend.passes.infra.base import PassContext
from onnxmend.passes.infra.catalogue import resolve
from onnxmend.passes.infra.manager import run_passes
from onnxmend.runtime.layers.blame import BlameOptions, blame_layers
from onnxmend.runtime.layers.plot import write_plot
from onnxmend.runtime.layers.report import LayerReport, layer_markdown
from onnxmend.runtime.session import Provider
from onnxmend.runtime.validate import Validation
from onnxmend.runtime.validate import validate as compare_with_source

REPORT_FILES = ("report.json", "report.md", "layers.png")


def validate_layers(model: str | Path, source: str, export_options: ExportOptions | None = None,
                    options: BlameOptions = BlameOptions(), out_dir: str | Path | None = None,
                    provider: Provider = "auto", threads: int = 0, force: bool = False,
                    progress: Callable[[str], None] | None = None) -> tuple[Validation, LayerReport]:
    """Output parity of ``model`` against ``source`` and the first layer of ``source`` whose output
    ``model`` no longer computes, from one export (``options.seed`` seeds the inputs and a source's random
    weights, as for ``convert``); with ``out_dir`` the reports are written (over files onnxmend did not
    write only with ``force``)."""
    say = progress or (lambda _msg: None)
    if out_dir is not None:
        claim_dir(Path(out_dir), REPORT_FILES, force)
    onnx_model = load_model(model)
    say(f"loading {source}")
    exported = export(source, replace(export_options or ExportOptions(), seed=options.seed))
    say(f"comparing {Path(model).name} on onnxruntime with {exported.framework}")
    validation = compare_with_source(onnx_model, exported, seed=options.seed, atol=options.atol, rtol=options.rtol,
                                     provider=provider, threads=threads)
    say("comparing layer by layer")
    report = blame_layers(onnx_model, exported, options, fixer=normalizer(exported))
    if out_dir is not None:
        write_layer_report(report, Path(out_dir))
    return validation, report


def layers_after_failed_parity(model: onnx.ModelProto, exported: Export, options: BlameOptions,
                               out_dir: Path) -> LayerReport:
    """What ``convert`` runs when the fixed graph fails parity: the layer report, as ``layers.*``."""
    report = blame_layers(model, exported, options, fixer=normalizer(exported))
    write_layer_report(report, out_dir, stem="layers")
    return report


def normalizer(exported: Export):
    """The ``fix`` preset (``--layout auto``) for a source's own export, used to align a port with it."""
    layout = choose_layout("auto", exported.is_nhwc)

    def fix(model: onnx.ModelProto) -> onnx.ModelProto:
        ctx = PassContext(opset=model_opset(model), preset="fix", framework=exported.framework,  # type: ignore[arg-type]
                          **layout_context("auto", layout))  # type: ignore[arg-type]
        return run_passes(model, resolve("fix"), ctx)[0]

    return fix


def write_layer_report(report: LayerReport, out_dir: Path, stem: str = "report") -> dict[str, Path]:
    """``<stem>.json``, ``<stem>.md`` and ``layers.png`` in ``out_dir``."""
    files = {"json": out_dir / f"{stem}.json", "md": out_dir / f"{stem}.md", "png": out_dir / "layers.png"}
    write_plot(report, files["png"])
    report.extra["files"] = {k: p.name for k, p in files.items()}
    write_json(files["json"], report.to_json())
    write_text(files["md"], layer_markdown(report, files["png"].name))
    return files
