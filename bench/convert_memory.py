"""Peak memory of ``onnxmend convert`` against the size of the model's weights.

Runs ``python -m onnxmend convert SOURCE -o OUT --force [ARGS]`` in a child process and samples, every
``--interval`` seconds, the resident memory of the child and every process below it (the gate's and the
validation's onnxruntime workers run at the same time as the parent, so their RSS adds up), read from
/proc; ``getrusage(RUSAGE_CHILDREN)`` gives the largest single process as a cross-check. The weight bytes
are those of ``raw.onnx``'s initializers. Kills the run when the tree passes ``--limit-gb`` (the machine is
shared).

    .venv/bin/python bench/convert_memory.py keras:VGG16 [--out /tmp/vgg16] [--limit-gb 10] [-- --no-verify]

Prints weights, peak RSS of the process tree, the largest process, their ratios to the weights and the
time of the peak.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time
from pathlib import Path

from onnxmend.core.fileio import load_model
from onnxmend.core.graph import human_bytes, weight_bytes


def tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants (0 for processes that are gone)."""
    total, stack, seen = 0, [root], set()
    while stack:
        pid = stack.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += _rss(pid)
        stack += _children(pid)
    return total


def _rss(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*") if Path(f"/proc/{pid}/task").exists() else []:
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def sample(cmd: list[str], interval: float, limit: int, log: Path) -> tuple[int, float, int, float]:
    """Run ``cmd``; return (peak tree RSS, seconds at the peak, exit code, seconds in all)."""
    start = time.perf_counter()
    with log.open("w") as handle:
        child = subprocess.Popen(cmd, stdout=handle, stderr=subprocess.STDOUT)
        peak, peak_at = 0, 0.0
        while child.poll() is None:
            rss = tree_rss(child.pid)
            if rss > peak:
                peak, peak_at = rss, time.perf_counter() - start
            if rss > limit:
                child.kill()
                print(f"killed: the process tree passed {human_bytes(limit)}", file=sys.stderr)
            time.sleep(interval)
        return peak, peak_at, child.wait(), time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", nargs="?", default="keras:VGG16")
    parser.add_argument("--out", default="/tmp/onnxmend-memory")
    parser.add_argument("--limit-gb", type=float, default=10.0)
    parser.add_argument("--interval", type=float, default=0.05)
    args, extra = parser.parse_known_args()  # the rest are convert options
    extra = [a for a in extra if a != "--"]
    cmd = [sys.executable, "-m", "onnxmend", "convert", args.source, "-o", args.out, "--force", *extra]
    log = Path(f"{args.out}.log")
    peak, peak_at, code, seconds = sample(cmd, args.interval, int(args.limit_gb * 1e9), log)
    largest = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    raw = Path(args.out) / "raw.onnx"
    weights = weight_bytes(load_model(raw)) if raw.exists() else 0
    print(f"command: {' '.join(cmd[1:])}  (exit {code}, {seconds:.0f} s; log {log})")
    print(f"weights (raw.onnx initializers): {human_bytes(weights)}")
    ratio = f" = {peak / weights:.2f}× the weights" if weights else ""
    print(f"peak RSS, process tree: {human_bytes(peak)}{ratio}, at {peak_at:.0f} s")
    ratio = f" = {largest / weights:.2f}× the weights" if weights else ""
    print(f"peak RSS, largest single process: {human_bytes(largest)}{ratio}")
    sys.exit(0 if code == 0 else 1)


if __name__ == "__main__":
    main()
