"""Where an int8 artifact runs and how fast: node placement per provider and fp32-vs-int8 latency.

Placement runs one profiled inference and reads the provider of every kernel from the profile, which is how
nodes that fall back from CUDA to CPU are listed (profiling is what ORT itself reports per kernel; its
verbose log lines are not a stable interface).
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import onnx

from onnxmend.runtime.session import create_session, session_options

Feeds = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class Latency:
    fp32_ms: float
    int8_ms: float
    runs: int
    threads: int
    provider: str
    method: str = "interleaved fp32/int8 runs after warm-up, perf_counter_ns, median"

    @property
    def speedup(self) -> float:
        return self.fp32_ms / self.int8_ms if self.int8_ms else 0.0

    def to_json(self) -> dict[str, object]:
        return {**asdict(self), "speedup": self.speedup}


def measure_latency(
    fp32: onnx.ModelProto | str, int8: onnx.ModelProto | str, feeds: Feeds, provider: str = "cpu",
    runs: int = 20, threads: int = 2, warmup: int = 3,
) -> Latency:
    """Median latency of both models, runs interleaved so machine noise hits them alike."""
    sessions = [create_session(m, provider=provider, threads=threads, opt_level="all") for m in (fp32, int8)]  # type: ignore[arg-type]
    for _ in range(warmup):
        for session in sessions:
            session.run(feeds)
    times: list[list[int]] = [[], []]
    for _ in range(runs):
        for index, session in enumerate(sessions):
            start = time.perf_counter_ns()
            session.run(feeds)
            times[index].append(time.perf_counter_ns() - start)
    fp32_ms, int8_ms = (statistics.median(t) / 1e6 for t in times)
    return Latency(fp32_ms, int8_ms, runs, threads, sessions[1].provider)


@dataclass
class Placement:
    provider: str  # the provider the session was created for
    nodes_by_provider: dict[str, list[str]]

    @property
    def cpu_fallback(self) -> list[str]:
        """Nodes that ran on CPU although the session targets CUDA (empty for a CPU session)."""
        if self.provider != "CUDAExecutionProvider":
            return []
        return self.nodes_by_provider.get("CPUExecutionProvider", [])

    def to_json(self) -> dict[str, object]:
        return {"provider": self.provider, "counts": {p: len(n) for p, n in self.nodes_by_provider.items()},
                "cpu_fallback": self.cpu_fallback}


def node_placement(model: onnx.ModelProto, provider: str, feeds: Feeds) -> Placement:
    """Load ``model`` on ``provider`` ("cpu"/"cuda"), run it once profiled and group kernels by provider."""
    import onnxruntime as ort

    from onnxmend.runtime.session import cuda_provider_options

    with tempfile.TemporaryDirectory(prefix="onnxmend-profile-") as tmp:
        opts = session_options(opt_level="all")
        opts.enable_profiling = True
        opts.profile_file_prefix = str(Path(tmp) / "quant")
        providers: list[object] = ["CPUExecutionProvider"]
        if provider == "cuda":
            providers.insert(0, ("CUDAExecutionProvider", cuda_provider_options(False)))
        session = ort.InferenceSession(model.SerializeToString(), opts, providers=providers)
        names = [i.name for i in session.get_inputs()]
        session.run(None, {n: feeds[n] for n in names})
        profile = Path(session.end_profiling())
        events = json.loads(profile.read_text(encoding="utf-8"))
    return Placement(session.get_providers()[0], parse_profile(events))


def parse_profile(events: Sequence[Mapping[str, object]]) -> dict[str, list[str]]:
    """Node names per execution provider from onnxruntime profile events (kernel-time events only)."""
    placed: dict[str, list[str]] = {}
    for event in events:
        args = event.get("args")
        name = str(event.get("name", ""))
        if event.get("cat") != "Node" or not isinstance(args, dict) or not name.endswith("_kernel_time"):
            continue
        node = name[: -len("_kernel_time")]
        bucket = placed.setdefault(str(args.get("provider", "unknown")), [])
        if node not in bucket:
            bucket.append(node)
    return placed
