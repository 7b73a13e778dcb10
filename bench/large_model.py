"""A model past protobuf's 2 GB limit through ``onnxmend fix``: external data in, external data out.

The synthetic model is a chain of ``MatMul(W_i) → Add(b_i) → Relu`` blocks over a dynamic batch, with
an Identity and a constant subexpression (``Constant 2 × Constant 0.5``) for the fix preset to remove and
fold; the weights are seeded, their count chosen so the initializers add up to ``--gb``. It is saved with
external data, ``onnxmend fix`` runs on it in a child process (its wall time and peak RSS measured), and
the output must

- be written with external data in the output's own folder (``OUT.onnx.data``),
- load, with every initializer the passes did not touch byte-for-byte the same (SHA-256 before and after),
- compute the same outputs as the input on onnxruntime (batch 1 and 3).

``tests/cli/test_large_model.py`` runs the same check at a few MB (a file saved with external data keeps
it through ``fix`` whatever its size); this script runs it at the real size:

    .venv/bin/python bench/large_model.py --gb 2.2 --dir /tmp/onnxmend-large [--no-verify]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnxmend.core.fileio import load_model, save_model

WIDTH = 2048  # each weight is WIDTH x WIDTH float32: 16 MiB


def build(total_bytes: int, width: int = WIDTH, seed: int = 0) -> onnx.ModelProto:
    """The chain, with enough blocks that its weights and biases take at least ``total_bytes``."""
    per_block = (width * width + width) * 4
    blocks = max(2, -(-total_bytes // per_block))
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    h = "x"
    for i in range(blocks):
        w = (rng.standard_normal((width, width), dtype=np.float32) / np.float32(np.sqrt(width))).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"),
                  numpy_helper.from_array(rng.standard_normal(width, dtype=np.float32) * np.float32(0.1), f"b{i}")]
        nodes += [helper.make_node("MatMul", [h, f"w{i}"], [f"mm{i}"]),
                  helper.make_node("Add", [f"mm{i}", f"b{i}"], [f"add{i}"]),
                  helper.make_node("Relu", [f"add{i}"], [f"h{i}"])]
        h = f"h{i}"
        if i == blocks // 2:  # work for remove-identity and fold-constants
            nodes += [helper.make_node("Identity", [h], ["mid"]),
                      helper.make_node("Constant", [], ["two"], value=numpy_helper.from_array(np.float32(2.0))),
                      helper.make_node("Constant", [], ["half"], value=numpy_helper.from_array(np.float32(0.5))),
                      helper.make_node("Mul", ["two", "half"], ["one"]),
                      helper.make_node("Mul", ["mid", "one"], ["scaled"])]
            h = "scaled"
    graph = helper.make_graph(
        nodes, "large", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", width])],
        [helper.make_tensor_value_info(h, TensorProto.FLOAT, ["batch", width])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="onnxmend-bench")
    model.ir_version = 8
    return model


def tensor_hashes(model: onnx.ModelProto) -> dict[str, str]:
    """SHA-256 of every initializer's values (as little-endian bytes), by name."""
    return {t.name: hashlib.sha256(np.ascontiguousarray(numpy_helper.to_array(t)).tobytes()).hexdigest()
            for t in model.graph.initializer}


@dataclass
class RoundTrip:
    initializer_bytes: int
    input_files: dict[str, int]
    output_files: dict[str, int]
    exit_code: int
    fix_seconds: float
    fix_peak_rss_mib: float  # the largest single process (onnxmend itself, or its onnxruntime worker)
    fix_tree_peak_rss_mib: float  # onnxmend and its worker together
    fix_tree_peak_anon_mib: float  # the same, anonymous memory only (RSS less mapped files, e.g. the weights
    # onnxruntime maps from external data: clean pages the kernel can drop and read again)
    hashes_compared: int
    hashes_equal: int
    outputs_equal: bool
    max_abs_diff: float
    fix_stdout_tail: str


def round_trip(folder: Path, total_bytes: int, width: int = WIDTH, verify: bool = True,
               external_threshold: int = 0) -> RoundTrip:
    """Build, save with external data, ``onnxmend fix`` in a child, and compare; ``folder`` is emptied first."""
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "in").mkdir(parents=True)
    model = build(total_bytes, width)
    before = tensor_hashes(model)
    size = sum(len(t.raw_data) for t in model.graph.initializer)
    source = save_model(model, folder / "in" / "model.onnx", external_threshold=external_threshold)
    del model
    target = folder / "out" / "fixed.onnx"
    code, seconds, rss, tree, anon, tail = run_fix(source, target, verify)
    fixed = load_model(target)
    after = tensor_hashes(fixed)
    del fixed
    common = [name for name in before if name in after]
    diff = compare_outputs(source, target, width)
    return RoundTrip(size, _files(source.parent), _files(target.parent), code, seconds, rss, tree, anon, len(common),
                     sum(before[n] == after[n] for n in common), diff == 0.0, diff, tail)


def run_fix(source: Path, target: Path, verify: bool) -> tuple[int, float, float, float, float, str]:
    """``onnxmend fix`` in a child process: its exit code, wall seconds, the peak RSS of its largest process
    (each process's own high-water mark, VmHWM, read every 50 ms), of its whole process tree (onnxmend and
    its onnxruntime worker, VmRSS summed every 50 ms) and of the tree's anonymous memory (RssAnon), in MiB,
    and its last lines of output. Not getrusage: a child forked from this process counts this process's
    memory (the model it built) until it execs."""
    args = [sys.executable, "-m", "onnxmend", "fix", str(source), "-o", str(target)] + ([] if verify else ["--no-verify"])
    start = time.perf_counter()
    with tempfile.TemporaryFile("w+") as log:
        child = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, text=True)
        tree_peak, largest, anon_peak = 0, 0, 0
        while child.poll() is None:
            total, highest, anon = _tree_rss_kib(child.pid)
            tree_peak, largest, anon_peak = max(tree_peak, total), max(largest, highest), max(anon_peak, anon)
            time.sleep(0.05)
        seconds = time.perf_counter() - start
        log.seek(0)
        tail = "\n".join(log.read().strip().splitlines()[-12:])
    return child.returncode, seconds, largest / 1024, tree_peak / 1024, anon_peak / 1024, tail


def _tree_rss_kib(pid: int) -> tuple[int, int, int]:
    """The resident memory of ``pid`` and all its descendants, the largest high-water mark among them, and
    their anonymous resident memory (Linux /proc), in KiB."""
    total, highest, anon, todo = 0, 0, 0, [pid]
    while todo:
        current = todo.pop()
        try:
            fields = dict(line.split(":", 1) for line in Path(f"/proc/{current}/status").read_text().splitlines()
                          if ":" in line)
            total += int(fields["VmRSS"].split()[0])
            highest = max(highest, int(fields["VmHWM"].split()[0]))
            anon += int(fields["RssAnon"].split()[0])
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, KeyError, ValueError):  # the process ended while we looked
            continue
    return total, highest, anon


def compare_outputs(source: Path, target: Path, width: int) -> float:
    """The largest difference between the two files' outputs on onnxruntime (CPU, optimisations off)."""
    from onnxmend.runtime.session import create_session

    rng = np.random.default_rng(1)
    worst = 0.0
    for batch in (1, 3):
        x = rng.standard_normal((batch, width), dtype=np.float32)
        outputs = [next(iter(create_session(str(p), provider="cpu", opt_level="disable").run({"x": x}).values()))
                   for p in (source, target)]
        worst = max(worst, float(np.max(np.abs(outputs[0] - outputs[1]))))
    return worst


def _files(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_size for p in sorted(folder.iterdir())}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--gb", type=float, default=2.2, help="size of the weights in GB (10^9 bytes; default 2.2)")
    parser.add_argument("--width", type=int, default=WIDTH, help="each weight is WIDTH x WIDTH float32")
    parser.add_argument("--dir", default="large-model-out", help="working folder (emptied first, removed after)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    parser.add_argument("--no-verify", action="store_true", help="run fix without the numeric gate")
    args = parser.parse_args(argv)
    folder = Path(args.dir)
    start = time.perf_counter()
    try:
        result = round_trip(folder, int(args.gb * 1e9), args.width, verify=not args.no_verify)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    print(json.dumps({**asdict(result), "total_seconds": round(time.perf_counter() - start, 1),
                      "cpu_count": os.cpu_count()}, indent=1))
    ok = (result.exit_code == 0 and result.outputs_equal and result.hashes_equal == result.hashes_compared
          and "fixed.onnx.data" in result.output_files)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
