"""What ``onnxmend bench`` measures and how: :class:`BenchOptions`, checked before anything runs."""

from __future__ import annotations

from dataclasses import dataclass

from onnxmend.core.errors import OnnxmendError

DEFAULT_SECONDS = 1.0
PROVIDERS = ("cpu", "cuda")
OPT_LEVELS = ("disable", "basic", "extended", "all")


@dataclass(frozen=True)
class BenchOptions:
    """How to measure. ``seconds`` is the timed budget per subject and cell; ``runs`` caps the count."""

    providers: tuple[str, ...] = ()  # empty: cpu, plus cuda when onnxruntime lists its provider
    batches: tuple[int, ...] = (1,)
    warmup: int = 5
    runs: int | None = None
    seconds: float | None = None  # None: DEFAULT_SECONDS unless ``runs`` is given
    rounds: int = 10
    threads: int = 0
    opt_level: str = "all"
    tf32: bool = True
    include_copies: bool = False
    baseline: str | int = 0
    seed: int = 0
    memory: bool = True
    compile: bool = False

    def validate(self) -> None:
        unknown = [p for p in self.providers if p not in PROVIDERS]
        if unknown:
            raise OnnxmendError(f"Unknown provider {unknown[0]!r}; use {' or '.join(PROVIDERS)}.")
        if not self.batches or any(b < 1 for b in self.batches):
            raise OnnxmendError("Batch sizes must be positive integers, e.g. --batch 1,8.")
        if self.runs is not None and self.runs < 1:
            raise OnnxmendError("--runs must be at least 1.")
        if self.seconds is not None and self.seconds <= 0:
            raise OnnxmendError("--seconds must be positive.")
        if self.warmup < 0 or self.rounds < 1 or self.threads < 0:
            raise OnnxmendError("--warmup and --threads must be >= 0 and --rounds >= 1.")
        if self.opt_level not in OPT_LEVELS:
            raise OnnxmendError(f"Unknown optimization level {self.opt_level!r}; use one of {', '.join(OPT_LEVELS)}.")

    @property
    def budget_s(self) -> float | None:
        if self.seconds is not None:
            return self.seconds
        return None if self.runs else DEFAULT_SECONDS

    def to_json(self) -> dict[str, object]:
        return {
            "providers": list(self.providers), "batches": list(self.batches), "warmup": self.warmup,
            "runs": self.runs, "seconds": self.budget_s, "rounds": self.rounds, "threads": self.threads,
            "opt_level": self.opt_level, "tf32": self.tf32, "include_copies": self.include_copies,
            "baseline": self.baseline, "seed": self.seed, "memory": self.memory, "compile": self.compile,
            "clock": "time.perf_counter_ns",
        }
