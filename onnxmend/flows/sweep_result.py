"""What a sweep is asked (:class:`SweepOptions`, one :class:`SweepJob` per model × preset × provider) and
what it gives back: one :class:`SweepRow` per job, the table people read and the files it is written to.

Rows travel between processes (a worker, a Ray task), so they hold plain values only. The table is built
once from the rows (:func:`sweep_table`) and drawn by the CLI's rich renderer and by ``sweep.md``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from onnxmend import __version__
from onnxmend.core.fileio import write_text
from onnxmend.core.table import Cell, Table, table, to_markdown
from onnxmend.exporters.options import ExportOptions
from onnxmend.runtime.compare import DEFAULT_ATOL, DEFAULT_RTOL

Engine = Literal["serial", "ray"]
# Op counts shown in the table (every count is in the JSON lines).
KEY_OPS = ("Transpose", "Pad", "Shape", "LayerNormalization", "BatchNormalization")
VERDICT_TONE = {"pass": "good", "mismatch": "bad", "degenerate": "warn", "unverified": "warn", "error": "bad"}


@dataclass(frozen=True)
class SweepOptions:
    """How every model is converted, checked and timed, and where the jobs run."""

    presets: tuple[str, ...] = ("fix",)
    providers: tuple[str, ...] = ("auto",)
    engine: Engine = "serial"
    address: str | None = None  # Ray: a cluster address; None starts a local instance
    cpus_per_model: float = 1.0  # Ray: CPUs reserved for each model's task
    export: ExportOptions = field(default_factory=ExportOptions)
    seed: int = 0
    threads: int = 0
    atol: float = DEFAULT_ATOL
    rtol: float = DEFAULT_RTOL
    bench_seconds: float = 0.5  # timed budget of the fixed graph's bench; 0 leaves latency out
    timeout_s: float = 600.0  # per job (one model × preset × provider)
    memory_bytes: int | None = None  # per model's worker process; None: 3/4 of physical memory
    force: bool = False  # write into folders holding files onnxmend did not write
    # Given to every model's worker process (None unsets); empty: sweep.reproducible_env().
    worker_env: tuple[tuple[str, str | None], ...] = ()

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["export"] = {"opset": self.export.opset, "torch_exporter": self.export.torch_exporter,
                          "dynamic_batch": self.export.dynamic_batch, "trust_source": self.export.trust_source}
        return data


@dataclass(frozen=True)
class SweepJob:
    """One row to produce. ``problem`` is set when the source line itself is bad: the row says so and no
    worker runs."""

    index: int
    source: str  # as the user wrote it
    preset: str
    provider: str
    out_dir: str
    target: str = ""  # the source as the worker loads it (paths made absolute); the source when empty
    inputs: tuple[str, ...] = ()  # --input values from the source's line
    problem: str | None = None


@dataclass(frozen=True)
class SweepRow:
    index: int
    source: str
    preset: str
    provider: str  # as requested
    verdict: str  # pass, mismatch, degenerate, unverified (as convert says) or error (no result)
    exit_code: int  # what `onnxmend convert` would have exited with for this model alone
    reason: str = ""
    ran_on: str = ""  # cpu or cuda: where the fixed graph was validated and timed
    max_abs: float | None = None
    max_abs_scaled: float | None = None
    raw_verdict: str | None = None
    nodes_raw: int | None = None
    nodes_fixed: int | None = None
    ops_raw: dict[str, int] = field(default_factory=dict)
    ops_fixed: dict[str, int] = field(default_factory=dict)
    latency_ms: float | None = None  # p50 of the fixed graph
    seconds: float = 0.0
    out_dir: str = ""

    @property
    def passed(self) -> bool:
        return self.verdict == "pass"

    def to_json(self) -> dict[str, object]:
        return {"onnxmend": __version__, **asdict(self)}


def failed_row(job: SweepJob, exit_code: int, reason: str) -> SweepRow:
    """The row of a job that produced no result: bad input (2) or a crash, hang or internal error (4)."""
    return SweepRow(job.index, job.source, job.preset, job.provider, "error", exit_code, reason.rstrip("."),
                    out_dir=job.out_dir)


@dataclass
class SweepResult:
    options: SweepOptions
    rows: list[SweepRow]
    out_dir: Path
    seconds: float = 0.0
    engine_seconds: float = 0.0  # starting or joining the engine (Ray's start-up; 0 for serial)
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> int:
        return sum(row.passed for row in self.rows)

    @property
    def exit_code(self) -> int:
        """0 when every row passed, 1 otherwise (a sweep with no rows has nothing that passed)."""
        return 0 if self.rows and self.passed == len(self.rows) else 1

    def to_json(self) -> dict[str, object]:
        return {
            "onnxmend": __version__, "rows": [row.to_json() for row in self.rows], "passed": self.passed,
            "total": len(self.rows), "exit_code": self.exit_code, "seconds": round(self.seconds, 3),
            "engine_seconds": round(self.engine_seconds, 3), "options": self.options.to_json(),
            "notes": self.notes,
            "files": {"jsonl": str(self.out_dir / "sweep.jsonl"), "markdown": str(self.out_dir / "sweep.md")},
        }


def sweep_table(rows: list[SweepRow], timings: bool = True) -> Table:
    """One line per model × preset × provider, in the order of the list; ``timings=False`` leaves the
    measured latency out (what two runs of the same sweep must agree on)."""
    columns = ["#>", "model", "preset", "provider", "verdict", "max abs/scale>", "nodes>", "key ops"]
    t = table("sweep", columns + (["p50 ms>"] if timings else []) + ["reason"], empty="(no models)")
    for row in sorted(rows, key=lambda r: r.index):
        provider = row.provider if not row.ran_on or row.ran_on == row.provider else f"{row.provider}→{row.ran_on}"
        scaled = "-" if row.max_abs_scaled is None else f"{row.max_abs_scaled:.2g}"
        nodes = "-" if row.nodes_raw is None else f"{row.nodes_raw} → {row.nodes_fixed}"
        verdict = row.verdict if row.verdict != "error" else f"error (exit {row.exit_code})"
        cells: list[Cell | str | int] = [row.index, row.source, row.preset, provider,
                                         Cell(verdict, VERDICT_TONE.get(row.verdict, "")), scaled, nodes,  # type: ignore[arg-type]
                                         key_ops_text(row)]
        if timings:
            cells.append("-" if row.latency_ms is None else f"{row.latency_ms:.3f}")
        t.add(*cells, row.reason or "-")
    return t


def key_ops_text(row: SweepRow) -> str:
    parts = [f"{op} {row.ops_raw.get(op, 0)}→{row.ops_fixed.get(op, 0)}" for op in KEY_OPS
             if row.ops_raw.get(op) or row.ops_fixed.get(op)]
    return ", ".join(parts) or "-"


def write_results(result: SweepResult, total: int) -> None:
    """Rewrite ``sweep.jsonl`` (one row per line) and ``sweep.md`` atomically; called after every model."""
    rows = sorted(result.rows, key=lambda r: r.index)
    lines = "".join(_json_line(row) + "\n" for row in rows)
    write_text(result.out_dir / "sweep.jsonl", lines)
    state = "finished" if len(rows) == total else f"running: {len(rows)} of {total} rows so far"
    settings = (f"presets {', '.join(result.options.presets)}; providers {', '.join(result.options.providers)}; "
                f"engine {result.options.engine}; seed {result.options.seed}; "
                f"bench {result.options.bench_seconds:g} s per fixed graph")
    text = (f"# onnxmend sweep\n\n{settings}. {state}.\n\n{to_markdown(sweep_table(rows))}\n\n"
            f"{sum(r.passed for r in rows)} of {len(rows)} rows passed.\n")
    if result.notes:
        text += "\n" + "".join(f"- {note}\n" for note in result.notes)
    write_text(result.out_dir / "sweep.md", text)


def _json_line(row: SweepRow) -> str:
    return json.dumps(row.to_json(), sort_keys=False)
