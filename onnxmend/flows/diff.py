"""``diff SRC_A SRC_B``: two ports of one model (a Keras original and its torch port, two ONNX files, a
``.keras`` file and a ``file.py:factory``), exported, normalized, aligned by structure and compared layer
by layer on the same seeded input. Writes ``report.json``, ``report.md`` and ``layers.png`` with ``out_dir``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path
from typing import Callable

from onnxmend.core.errors import OnnxmendError
from onnxmend.core.interface import source_layout_specs
from onnxmend.core.outputs import claim_dir
from onnxmend.exporters import Export, ExportOptions, export
from onnxmend.flows.layers import REPORT_FILES, normalizer, write_layer_report
from onnxmend.runtime.compare import Tolerance
from onnxmend.runtime.inputs import synthesize
from onnxmend.runtime.layers.blame import BlameOptions, source_graph
from onnxmend.runtime.layers.diff import Side, diff_models
from onnxmend.runtime.layers.graph import SourceGraph
from onnxmend.runtime.layers.report import LayerReport

log = logging.getLogger(__name__)


def diff(source_a: str, source_b: str, export_options: ExportOptions | None = None,
         options: BlameOptions = BlameOptions(), out_dir: str | Path | None = None, force: bool = False,
         progress: Callable[[str], None] | None = None) -> LayerReport:
    """Name the first aligned layer pair where ``source_b`` stops computing what ``source_a`` computes.

    Both are exported with ``export_options`` and ``options.seed`` (twins in the zoo share their weights for
    one seed), normalized with the ``fix`` preset (NCHW interface), and run on inputs seeded the same way.
    With ``out_dir`` the reports are written (over files onnxmend did not write only with ``force``).
    """
    say = progress or (lambda _msg: None)
    if out_dir is not None:
        claim_dir(Path(out_dir), REPORT_FILES, force)
    opts = replace(export_options or ExportOptions(), seed=options.seed)
    sides = []
    for source in (source_a, source_b):
        say(f"exporting and normalizing {source}")
        sides.append(_side(source, opts, options.seed))
    feeds = synthesize(source_layout_specs(sides[0].model), seed=options.seed)
    say("comparing the aligned layers")
    report = diff_models(sides[0], sides[1], feeds, Tolerance(options.atol, options.rtol), options.budget,
                         options.strategy)
    if out_dir is not None:
        write_layer_report(report, Path(out_dir))
    return report


def _side(source: str, options: ExportOptions, seed: int) -> Side:
    exported = export(source, options)
    model = normalizer(exported)(exported.model)
    return Side(source, model, _graph(exported, seed), nchw=exported.framework == "torch")


def _graph(exported: Export, seed: int) -> SourceGraph:
    """The source as layers, for its configs; an ONNX file (or a model that cannot be read as layers)
    gives an empty graph that only says which layout the source has."""
    try:
        graph = source_graph(exported, synthesize(exported.inputs, seed=seed))
    except OnnxmendError as exc:
        log.info("%s cannot be read as layers: %s", exported.source, exc)
        graph = None
    if graph is None or graph.framework == "onnx":
        return SourceGraph("onnx", [], channels_last=exported.is_nhwc)
    return graph
