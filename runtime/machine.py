"""Facts about the machine a benchmark ran on, and an honest peak-memory probe for one ONNX artifact.

Machine facts are read without importing heavy frameworks: /proc/cpuinfo for the CPU, ``nvidia-smi`` when
present for GPUs, and package metadata (not imports) for library versions.

Peak resident memory is process-wide and never goes down, so measuring several artifacts in one process
tells nothing about the second one. :func:`probe_peak_rss` therefore starts a fresh Python process per
artifact that imports onnxruntime, loads the inputs, notes its peak RSS (the *baseline*), creates the
session, runs it a few times and notes the peak again. The peak is ``VmHWM`` from /proc/self/status:
``ru_maxrss`` would not do, as Linux carries it across ``exec`` from the parent that forked the probe. ``growth_mb`` (peak minus baseline) is what the
session, its weights, arenas and a few inferences cost on top of an idle Python with onnxruntime loaded. On
CUDA it counts host memory only.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Mapping

import numpy as np

log = logging.getLogger(__name__)

_INTERESTING_FLAGS = ("avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16",
                      "avx_vnni", "amx_tile", "amx_int8", "amx_bf16")
_PACKAGES = ("onnxruntime", "onnxruntime-gpu", "onnx", "numpy", "torch", "tensorflow", "tensorflow-cpu", "keras")
_PROBE_RUNS = 3
_PROBE_TIMEOUT_S = 300


@dataclass(frozen=True)
class MachineFacts:
    cpu_model: str
    logical_cores: int
    physical_cores: int | None
    usable_cores: int
    cpu_flags: list[str]
    gpus: list[str]
    platform: str
    python: str
    versions: dict[str, str]
    ort_providers: list[str] = field(default_factory=list)
    load_average: list[float] = field(default_factory=list)  # 1, 5, 15 minutes, when the facts were taken

    def to_json(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class Memory:
    """Peak RSS of a fresh process running one artifact; see the module docstring for what it means."""

    baseline_mb: float
    peak_mb: float
    growth_mb: float
    method: str = "fresh subprocess per artifact: peak RSS after session+runs minus peak RSS after imports"


def machine_facts() -> MachineFacts:
    cpuinfo = _read_cpuinfo()
    import onnxruntime as ort

    return MachineFacts(
        cpu_model=_cpu_model(cpuinfo),
        logical_cores=os.cpu_count() or 1,
        physical_cores=_physical_cores(cpuinfo),
        usable_cores=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1),
        cpu_flags=_cpu_flags(cpuinfo),
        gpus=gpu_names(),
        platform=platform.platform(),
        python=platform.python_version(),
        versions=package_versions(),
        ort_providers=list(ort.get_available_providers()),
        load_average=load_average(),
    )


def load_average() -> list[float]:
    return [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else []


def busy_note(usable_cores: int, before: list[float], after: list[float]) -> str | None:
    """A warning when other processes competed for the CPU while timing (1-minute load above half the cores)."""
    peak = max([v[0] for v in (before, after) if v], default=0.0)
    if peak <= usable_cores / 2:
        return None
    return (f"the machine was busy (1-minute load average up to {peak:.1f} on {usable_cores} usable cores): "
            "latencies include contention with other processes; compare within a run, not across runs")


def _read_cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _cpu_model(cpuinfo: str) -> str:
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _cpu_flags(cpuinfo: str) -> list[str]:
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            present = set(line.split(":", 1)[1].split())
            return [flag for flag in _INTERESTING_FLAGS if flag in present]
    return []


def _physical_cores(cpuinfo: str) -> int | None:
    cores = set()
    physical = core = None
    for line in cpuinfo.splitlines() + [""]:
        if line.startswith("physical id"):
            physical = line.split(":", 1)[1].strip()
        elif line.startswith("core id"):
            core = line.split(":", 1)[1].strip()
        elif not line.strip() and core is not None:
            cores.add((physical, core))
            physical = core = None
    return len(cores) or None


def gpu_names() -> list[str]:
    """GPU names and driver from nvidia-smi; empty when there is no nvidia-smi or it finds no GPU."""
    binary = shutil.which("nvidia-smi")
    if not binary:
        return []
    try:
        done = subprocess.run([binary, "--query-gpu=name,driver_version", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        log.info("nvidia-smi did not answer: %s", exc)
        return []
    if done.returncode != 0:
        return []
    return [line.strip() for line in done.stdout.splitlines() if line.strip()]


def package_versions() -> dict[str, str]:
    versions = {}
    for package in _PACKAGES:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    return versions


def probe_peak_rss(
    model_path: str | os.PathLike[str], feeds: Mapping[str, np.ndarray], provider: str,
    threads: int, opt_level: str, tf32: bool,
) -> Memory:
    """Peak RSS of a fresh process that creates a session for ``model_path`` and runs it on ``feeds``."""
    with tempfile.TemporaryDirectory(prefix="onnxmend-rss-") as tmp:
        feeds_path = Path(tmp) / "feeds.npz"
        np.savez(feeds_path, **dict(feeds))
        args = json.dumps({"model": str(model_path), "feeds": str(feeds_path), "provider": provider,
                           "threads": threads, "opt_level": opt_level, "tf32": tf32})
        code = "from onnxmend.runtime.machine import _probe_main; _probe_main()"
        done = subprocess.run([sys.executable, "-c", code, args], capture_output=True, text=True,
                              timeout=_PROBE_TIMEOUT_S, check=False)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"the memory probe failed ({tail[:200]})")
    values = json.loads(done.stdout.strip().splitlines()[-1])
    return Memory(values["baseline_mb"], values["peak_mb"], round(values["peak_mb"] - values["baseline_mb"], 1))


def _max_rss_mb() -> float:
    """This process's peak RSS in MiB: VmHWM where /proc has it, else ru_maxrss (KiB on Linux, bytes on macOS)."""
    try:
        for line in Path("/proc/self/status").read_text(encoding="ascii", errors="replace").splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    scale = 1 / (1 << 20) if sys.platform == "darwin" else 1 / 1024
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale, 1)


def _probe_main() -> None:
    """Entry point of the probe subprocess: prints one JSON line with baseline and peak RSS in MiB."""
    from onnxmend.runtime.session import create_session

    args = json.loads(sys.argv[1])
    with np.load(args["feeds"]) as data:
        feeds = {name: data[name] for name in data.files}
    baseline = _max_rss_mb()
    session = create_session(args["model"], provider=args["provider"], threads=args["threads"],
                             opt_level=args["opt_level"], tf32=args["tf32"])
    for _ in range(_PROBE_RUNS):
        session.run(feeds)
    sys.stdout.write(json.dumps({"baseline_mb": baseline, "peak_mb": _max_rss_mb()}) + "\n")
