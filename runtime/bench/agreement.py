"""Do the subjects of a benchmark compute the same thing? Each one's outputs, on the cell's inputs, against
the reference subject's: the source when it is benched, else the baseline artifact.

A speed-up is only worth quoting for an artifact that still computes the model; the agreement column says
so next to it (an int8 artifact shows its cosine, a broken one its mismatch). The comparison is the one
:class:`~onnxmend.runtime.compare.Comparator` every other check uses.
"""

from __future__ import annotations

import logging
from typing import Callable, Mapping, Sequence

import numpy as np

from onnxmend.core.errors import first_line
from onnxmend.runtime.bench.results import ArtifactResult
from onnxmend.runtime.bench.source import SOURCE_LABEL
from onnxmend.runtime.compare import Comparator, Tolerance

log = logging.getLogger(__name__)

Probe = Callable[[], dict[str, np.ndarray]]


def probe_outputs(rows: Sequence[ArtifactResult], probes: Mapping[str, Probe | None]) -> dict[str, dict[str, np.ndarray]]:
    """Every measured row's outputs on the cell's inputs (source layout); a failing probe is noted on its row."""
    outputs: dict[str, dict[str, np.ndarray]] = {}
    for row in rows:
        probe = probes.get(row.label)
        if row.status != "ok" or probe is None:
            continue
        try:
            outputs[row.label] = probe()
        except Exception as exc:  # a runtime's own error types
            row.notes.append(f"agreement not checked: {first_line(exc, 200)}")
    return outputs


def record_agreement(rows: Sequence[ArtifactResult], probes: Mapping[str, Probe | None], baseline: str) -> dict[str, dict[str, np.ndarray]]:
    """Fill ``row.agreement`` for every measured row that has a probe; returns the outputs probed."""
    measured = {row.label: row for row in rows if row.status == "ok" and probes.get(row.label)}
    outputs = probe_outputs(rows, probes)
    reference_label = SOURCE_LABEL if SOURCE_LABEL in measured else baseline
    reference = outputs.get(reference_label)
    if reference is None:
        return outputs
    comparator = Comparator(Tolerance())
    for label, actual in outputs.items():
        try:
            comparison = comparator.compare(reference, actual)
        except ValueError as exc:
            measured[label].notes.append(f"agreement not checked: {exc}")
            continue
        measured[label].agreement = {
            "vs": reference_label, "verdict": comparison.verdict,
            "min_cosine": min((o.cosine for o in comparison.outputs), default=1.0),
            "max_abs_scaled": comparison.worst_max_abs_scaled,
        }
    return outputs
