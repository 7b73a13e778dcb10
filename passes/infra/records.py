"""What a pipeline run reports: one :class:`PassRecord` per rewrite, and the :class:`PipelineReport`."""

from __future__ import annotations

from dataclasses import dataclass, field

from onnxmend.passes.infra.base import Skip


@dataclass
class PassRecord:
    name: str
    round: int
    status: str  # "applied", "rejected"
    changed: int
    seconds: float
    deltas: dict[str, tuple[int, int]] = field(default_factory=dict)
    reason: str = ""

    def delta_text(self) -> str:
        return ", ".join(f"{op} {b - a:+d} ({a}→{b})" for op, (a, b) in sorted(self.deltas.items()))

    def to_json(self) -> dict[str, object]:
        return {
            "pass": self.name, "round": self.round, "status": self.status, "changed": self.changed,
            "seconds": round(self.seconds, 4), "reason": self.reason,
            "deltas": {op: {"before": a, "after": b} for op, (a, b) in self.deltas.items()},
        }


@dataclass
class PipelineReport:
    passes: list[str]
    records: list[PassRecord] = field(default_factory=list)
    skipped: dict[str, list[Skip]] = field(default_factory=dict)
    notes: dict[str, list[str]] = field(default_factory=dict)
    # Passes whose precondition (Pass.requires) did not hold, with the reason; they never ran.
    not_run: dict[str, str] = field(default_factory=dict)
    rounds: int = 0
    ops_before: dict[str, int] = field(default_factory=dict)
    ops_after: dict[str, int] = field(default_factory=dict)
    verified: bool = False
    # Why the rewrites were not compared numerically (empty when they were, or when that was not asked).
    unverified_reason: str = ""
    # Bytes of constant tensors before and after, and the growth a rewrite may cause (passes/infra/growth).
    weights_before: int = 0
    weights_after: int = 0
    max_growth: float = 1.5

    @property
    def growth(self) -> float:
        return self.weights_after / self.weights_before if self.weights_before else 1.0

    @property
    def rejected(self) -> list[PassRecord]:
        return [r for r in self.records if r.status == "rejected"]

    def to_json(self) -> dict[str, object]:
        return {
            "passes": self.passes, "rounds": self.rounds, "verified": self.verified,
            "unverified_reason": self.unverified_reason,
            "applied": [r.to_json() for r in self.records],
            "rejected": [{"pass": r.name, "reason": r.reason} for r in self.rejected],
            "not_run": self.not_run,
            "skipped": {p: [{"node": s.node, "reason": s.reason} for s in skips] for p, skips in self.skipped.items()},
            "notes": self.notes, "ops_before": self.ops_before, "ops_after": self.ops_after,
            "weights": {"before_bytes": self.weights_before, "after_bytes": self.weights_after,
                        "growth": round(self.growth, 4), "max_growth": str(self.max_growth)},
        }
