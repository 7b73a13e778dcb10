"""How the fix pipeline's run time grows with graph size, beside onnxsim on the same graphs (DESIGN.md:
linear; a 100k-node graph in ≤ 15 s).

The graph is a chain of tf2onnx-style blocks, 14 nodes each: an NHWC tensor wrapped in a Transpose pair
around a 1x1 Conv, a decomposed LayerNorm over the last axis, Relu and a residual Add; every pass of the
fix preset has work on it (push-transposes, fuse-layer-norm, cleanup). Tensors are tiny, so the time is
the tool's own, not onnxruntime's.

For each size the script runs onnxmend's fix preset without the gate, onnxsim (``onnxsim.simplify``, in the
dev extra), and the fix preset with the numeric gate (as ``fix`` runs it: the gate's references are taken
in the background while the first round runs), one after the other in this process, and prints one table:
wall seconds, CPU seconds of this process (what a busy shared machine inflates least), onnxmend/onnxsim
ratios, ms per node. Then a per-phase profile of the largest size:
where the seconds go (each pass, the manager's export, checker and shape inference, graphsurgeon import,
sweep/toposort, the gate), each phase's own time without the phases it calls.

    .venv/bin/python bench/fix_scaling.py [--nodes 10000 100000] [--no-gate] [--no-onnxsim]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from onnxmend.passes.infra.base import PassContext
from onnxmend.passes.infra.catalogue import resolve
from onnxmend.passes.infra.manager import run_passes

CHANNELS, SIZE, BLOCK_NODES = 8, 4, 14


def block(i: int, x: str, rng: np.random.Generator) -> tuple[list[onnx.NodeProto], list[onnx.TensorProto], str]:
    p = f"b{i}_"
    inits = [
        numpy_helper.from_array(rng.standard_normal((CHANNELS, CHANNELS, 1, 1)).astype(np.float32) * 0.3, p + "w"),
        numpy_helper.from_array(rng.standard_normal(CHANNELS).astype(np.float32), p + "gamma"),
        numpy_helper.from_array(rng.standard_normal(CHANNELS).astype(np.float32), p + "beta"),
        numpy_helper.from_array(np.asarray(1e-3, np.float32), p + "eps"),
    ]
    n = helper.make_node
    nodes = [
        n("Transpose", [x], [p + "nchw"], perm=[0, 3, 1, 2]), n("Conv", [p + "nchw", p + "w"], [p + "conv"]),
        n("Transpose", [p + "conv"], [p + "nhwc"], perm=[0, 2, 3, 1]),
        n("ReduceMean", [p + "nhwc"], [p + "mean"], axes=[-1]), n("Sub", [p + "nhwc", p + "mean"], [p + "d"]),
        n("Mul", [p + "d", p + "d"], [p + "sq"]), n("ReduceMean", [p + "sq"], [p + "var"], axes=[-1]),
        n("Add", [p + "var", p + "eps"], [p + "ve"]), n("Sqrt", [p + "ve"], [p + "std"]),
        n("Div", [p + "d", p + "std"], [p + "norm"]), n("Mul", [p + "norm", p + "gamma"], [p + "scaled"]),
        n("Add", [p + "scaled", p + "beta"], [p + "shifted"]), n("Relu", [p + "shifted"], [p + "relu"]),
        n("Add", [p + "relu", x], [p + "out"]),
    ]
    return nodes, inits, p + "out"


def chain(blocks: int) -> onnx.ModelProto:
    rng = np.random.default_rng(0)
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    x = "x"
    for i in range(blocks):
        more, params, x = block(i, x, rng)
        nodes += more
        inits += params
    shape = [1, SIZE, SIZE, CHANNELS]
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, shape)], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


# ------------------------------------------------------------------------------------------------ timing


@dataclass
class Spent:
    wall: float = 0.0
    cpu: float = 0.0
    calls: int = 0
    beside: bool = False  # ran in another thread than the pipeline's, at the same time as its phases


class Phases:
    """Wraps functions by name and adds up each one's own wall and CPU time (what it calls that is wrapped
    too is counted there, not twice). The bench's instrument: the library has no timers of its own.

    Nesting is tracked per thread: the gate's check runs in a thread of its own beside the checker and the
    shape inference worker, so with the gate the phases add up to more than the run's wall time."""

    def __init__(self) -> None:
        self.spent: dict[str, Spent] = {}
        self._local = threading.local()
        self._undo: list[tuple[Any, str, Any]] = []

    @property
    def _stack(self) -> list[list[float]]:
        if not hasattr(self._local, "stack"):
            self._local.stack = []
        return self._local.stack

    def wrap(self, owner: Any, attr: str, label: str | Callable[..., str]) -> None:
        original = getattr(owner, attr)
        if getattr(original, "_phase_wrapped", False):
            return

        def timed(*args: Any, **kwargs: Any) -> Any:
            name = label if isinstance(label, str) else label(*args, **kwargs)
            beside = threading.current_thread() is not threading.main_thread()
            name += " (its own thread)" if beside else ""
            wall, cpu = time.perf_counter(), time.thread_time()
            self._stack.append([0.0, 0.0])
            try:
                return original(*args, **kwargs)
            finally:
                inner = self._stack.pop()
                dw, dc = time.perf_counter() - wall, time.thread_time() - cpu
                spent = self.spent.setdefault(name, Spent())
                spent.wall, spent.cpu, spent.calls = spent.wall + dw - inner[0], spent.cpu + dc - inner[1], spent.calls + 1
                spent.beside = beside
                if self._stack:
                    self._stack[-1][0] += dw
                    self._stack[-1][1] += dc

        timed._phase_wrapped = True  # type: ignore[attr-defined]
        setattr(owner, attr, timed)
        self._undo.append((owner, attr, original))

    def wrap_everywhere(self, function: Callable, label: str) -> None:
        """Wrap ``function`` in every onnxmend module that holds it under its own name."""
        for name, module in list(sys.modules.items()):
            if name.startswith("onnxmend.") and getattr(module, function.__name__, None) is function:
                self.wrap(module, function.__name__, label)

    def undo(self) -> None:
        for owner, attr, original in reversed(self._undo):
            setattr(owner, attr, original)
        self._undo.clear()


def instrument(phases: Phases, passes: list, gate: Any) -> None:
    """The phases the manager's run is made of; the names are the library's, so this follows its code."""
    import onnx_graphsurgeon as gs

    from onnxmend.core import graph as core_graph
    from onnxmend.core import isolated
    from onnxmend.passes.infra import graph_ops, naming, provenance, round_ops, shapes

    phases.wrap(gs, "import_onnx", "graphsurgeon import")
    phases.wrap(onnx.checker, "check_model", "onnx checker")
    phases.wrap_everywhere(core_graph.infer_shapes, "shape inference (whole model)")
    phases.wrap_everywhere(isolated.infer_shapes_isolated, "shape inference (worker round trip)")
    phases.wrap_everywhere(round_ops.export_like, "export")
    phases.wrap_everywhere(round_ops.refresh_shapes, "shapes back onto the graph")
    phases.wrap_everywhere(provenance.read_seeds, "provenance read from the input's nodes")
    phases.wrap_everywhere(graph_ops.sweep, "sweep")
    phases.wrap_everywhere(graph_ops.toposort, "toposort")
    phases.wrap_everywhere(graph_ops.op_counts, "op counts")
    phases.wrap_everywhere(shapes.infer_new, "local shape inference")
    phases.wrap(naming.Namer, "_collect", "namer (the taken names)")
    for p in passes:
        phases.wrap(p, "apply", f"pass {p.name}")
    if gate is not None:
        phases.wrap(gate, "check", "gate")


@dataclass
class Timed:
    wall: float
    cpu: float
    nodes_after: int
    note: str = ""
    phases: dict[str, Spent] = field(default_factory=dict)


def fix(model: onnx.ModelProto, verify: bool, profile: bool) -> Timed:
    """The fix preset on ``model``; with ``verify``, gated as ``fix`` gates it (the gate takes its references in
    the background while the first round runs; the profile shows how long the pipeline then waited for them)."""
    from onnxmend.runtime.gate import NumericGate

    phases = Phases()
    wall, cpu = time.perf_counter(), time.process_time()
    gate = NumericGate(model, background=True) if verify else None
    passes = resolve("fix")
    if profile:
        instrument(phases, passes, gate)
        if gate is not None:  # the references, when the pipeline has to wait for them; the noise floor
            phases.wrap(NumericGate, "_ready", "gate: waiting for the references")
            phases.wrap(NumericGate, "_noise_floor", "gate: noise floor (onnxruntime optimised)")
    try:
        fixed, report = run_passes(model, passes, PassContext(opset=17, layout="nchw"), gate=gate)
    finally:
        phases.undo()
    timed = Timed(time.perf_counter() - wall, time.process_time() - cpu, len(fixed.graph.node),
                  f"{report.rounds} rounds, {len(report.rejected)} rejected", phases.spent)
    if verify and not report.verified:
        timed.note += f", NOT verified: {report.unverified_reason}"
    return timed


def simplify(model: onnx.ModelProto) -> Timed | None:
    if importlib.util.find_spec("onnxsim") is None:
        return None
    import onnxsim

    wall, cpu = time.perf_counter(), time.process_time()
    simplified, ok = onnxsim.simplify(model)
    return Timed(time.perf_counter() - wall, time.process_time() - cpu, len(simplified.graph.node),
                 "" if ok else "onnxsim's own check failed")


# ----------------------------------------------------------------------------------------------- report


def machine() -> str:
    flags = ""
    try:
        with open("/proc/cpuinfo") as info:
            lines = info.read().splitlines()
        model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "")
        found = next((line.split(":", 1)[1].split() for line in lines if line.startswith("flags")), [])
        flags = " ".join(f for f in ("avx2", "avx512f", "avx512_vnni", "fma") if f in found)
    except OSError:
        model = platform.processor()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    return f"{model or platform.machine()} ({flags}), {os.cpu_count()} CPUs, load average {load}"


def row(nodes: int, ours: Timed, sim: Timed | None, gated: Timed | None) -> str:
    def ratio(a: float, b: float | None) -> str:
        return f"{a / b:5.2f}" if b else "  n/a"

    sim_wall = f"{sim.wall:8.1f}" if sim else "     n/a"
    sim_cpu = f"{sim.cpu:8.1f}" if sim else "     n/a"
    gate = f"{gated.wall:8.1f}" if gated else "       —"
    return (f"{nodes:>8} {ours.nodes_after:>7} {ours.wall:8.1f} {ours.cpu:8.1f} {sim_wall} {sim_cpu} "
            f"{ratio(ours.wall, sim.wall if sim else None):>6} {ratio(ours.cpu, sim.cpu if sim else None):>6} "
            f"{ours.cpu / nodes * 1e3:7.3f} {gate}  {ours.note}{'; gated: ' + gated.note if gated else ''}")


def print_profile(nodes: int, ours: Timed, gated: Timed | None) -> None:
    print(f"\nPer phase at {nodes} nodes (own time: wall s / CPU s of its thread, calls; with the gate: wall s)")
    total_w, total_c = ours.wall, ours.cpu
    names = sorted(set(ours.phases) | set(gated.phases if gated else ()),
                   key=lambda n: -(ours.phases.get(n, Spent()).cpu or (gated.phases[n].wall if gated else 0)))
    for name in names:
        mine = ours.phases.get(name, Spent())
        extra = f"{gated.phases[name].wall:8.2f}" if gated and name in gated.phases else "       —"
        print(f"  {name:50s} {mine.wall:7.2f} {mine.cpu:7.2f} {mine.calls:5d} {extra}")
    rest_w = total_w - sum(s.wall for s in ours.phases.values())
    rest_c = total_c - sum(s.cpu for s in ours.phases.values())
    rest_g = f"{gated.wall - sum(s.wall for s in gated.phases.values() if not s.beside):8.2f}" if gated else "       —"
    print(f"  {'manager (the rest)':50s} {rest_w:7.2f} {rest_c:7.2f}       {rest_g}")
    print(f"  {'total':50s} {total_w:7.2f} {total_c:7.2f}       {f'{gated.wall:8.2f}' if gated else '       —'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=[10_000, 100_000],
                        help="Graph sizes (rounded to whole 14-node blocks).")
    parser.add_argument("--no-gate", action="store_true", help="Skip the runs with the numeric gate.")
    parser.add_argument("--no-onnxsim", action="store_true", help="Skip onnxsim.")
    parser.add_argument("--no-profile", action="store_true", help="Skip the per-phase profile.")
    args = parser.parse_args()
    fix(chain(20), verify=False, profile=False)  # warm-up: imports, onnxruntime's first session
    print(machine(), flush=True)
    print(f"{'nodes':>8} {'after':>7} {'ours s':>8} {'ours cpu':>8} {'sim s':>8} {'sim cpu':>8} {'ratio':>6} "
          f"{'r(cpu)':>6} {'ms/node':>7} {'gate s':>8}  (ms/node from CPU time)", flush=True)
    largest = max(args.nodes)
    profiles: tuple[int, Timed, Timed | None] | None = None
    for nodes in args.nodes:
        model = chain(max(1, round(nodes / BLOCK_NODES)))
        count = len(model.graph.node)
        profile = nodes == largest and not args.no_profile
        ours = fix(model, verify=False, profile=profile)
        sim = None if args.no_onnxsim else simplify(model)
        gated = None if args.no_gate else fix(model, verify=True, profile=profile)
        print(row(count, ours, sim, gated), flush=True)
        if profile:
            profiles = (count, ours, gated)
    print(machine(), flush=True)
    if profiles:
        print_profile(*profiles)


if __name__ == "__main__":
    main()
