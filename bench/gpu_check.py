"""The CUDA path in one prepared run (≤ 5 minutes on a machine with a GPU); writes one JSON.

    .venv/bin/python bench/gpu_check.py [--quick] [--timeout 280] [--out gpu-check.json]
    .venv/bin/python bench/gpu_check.py --provider cpu --quick   # rehearse every step without a GPU

Steps, each in a worker process given the time left (a hang or a native crash in CUDA is a failed step,
never a dead script, and the JSON is always written):

1. probe — the CUDA provider starts (a one-node session), or the reason it does not;
2. parity — every zoo model (``--quick``: one per seed family) and keras:ConvNeXtTiny: export and fix on
   the CPU, then the fixed graph on CUDA with TF32 off against the same graph on the CPU, max abs ≤ 1e-4 ×
   max(1, max|reference|) per output (the same graph with TF32 on is measured beside it, for information);
3. placement — the int8 artifact of a MatMul model (``onnxmend quantize`` with the cuda target): the
   int8 accuracy gate, and every node listed by the provider it ran on (nodes that fell back to CPU by name);
   whether int8 is worth shipping there (smaller, faster: ``verdict``, ``worth``) is reported, not judged;
4. bench — raw vs fixed ONNX (CUDA: I/O binding, copies not timed) and the torch source eager (on the CPU,
   the torch wheel is a CPU build) with ``onnxmend bench``.

Exit codes: 0 every step ran and passed; 1 a step failed (parity above the bound, an int8 gate failure, a
step that raised, crashed or hung); 3 not verified: no GPU (the CUDA provider does not start here: the JSON
has ``"status": "no GPU"`` and the reason, and nothing else runs) or the time budget ran out before every
step ran (the JSON lists what was skipped); 2 bad arguments. Where a GPU is visible (nvidia-smi) but the CUDA
provider does not start, the status is ``"CUDA unavailable"`` (exit 3), the reason naming the library it misses.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

SCHEMA = "onnxmend.gpu_check/1"
PARITY_BOUND = 1e-4  # max abs / max(1, max|reference|), TF32 off
QUICK_ZOO = ("tf-same-conv-keras", "tf-pad-dynamic-torch", "depthwise-keras", "bn-stack-keras",
             "layernorm-hwc-keras", "vit-block-torch", "resnet18-torch", "bert-encoder-torch")
EXTRA_SOURCES = ("keras:ConvNeXtTiny",)
EXIT_OK, EXIT_FAILED, EXIT_NOT_VERIFIED = 0, 1, 3
NOT_RUN = ("no GPU", "CUDA unavailable")  # statuses of a run whose probe found no working CUDA provider
RESERVE_S = 5.0  # kept back to write the JSON
MIN_STEP_S = 10.0  # a step is not started with less time than this left
BENCH_DIR = str(Path(__file__).resolve().parent)
FUSED = "(fused by onnxruntime)"  # a profiled kernel whose node onnxruntime's optimiser made


# ------------------------------------------------------------------------------------ steps (in a worker)

def probe_step(provider: str) -> dict[str, object]:
    """Whether the provider starts, and the machine's GPUs and onnxruntime providers."""
    import onnxruntime as ort

    from onnxmend.runtime.machine import gpu_names
    from onnxmend.runtime.session import cuda_unavailable_reason

    reason = cuda_unavailable_reason() if provider == "cuda" else None
    library = _cuda_library_problem() if reason else None
    if library:
        reason = (f"{reason}; loading its library says: {library} (the CUDA and cuDNN libraries this onnxruntime "
                  "was built for are not on the library path)")
    return {"provider": provider, "starts": reason is None, "reason": reason, "gpus": gpu_names(),
            "ort_providers": list(ort.get_available_providers()), "ort": ort.__version__}


def _cuda_library_problem() -> str | None:
    """Why onnxruntime's CUDA provider library does not load (the first CUDA/cuDNN library it misses)."""
    import ctypes

    import onnxruntime as ort

    from onnxmend.core.errors import first_line

    path = Path(ort.__file__).parent / "capi" / "libonnxruntime_providers_cuda.so"
    if not path.is_file():
        return None
    try:
        ctypes.CDLL(str(path))
    except OSError as exc:
        return first_line(exc)
    return None


def parity_step(source: str, out_dir: str, provider: str, seed: int = 0) -> dict[str, object]:
    """Export and fix on the CPU, then the fixed graph on ``provider`` (TF32 off) vs on the CPU."""
    from onnxmend.flows.convert import ConvertOptions, convert
    from onnxmend.runtime.compare import Comparator, Tolerance
    from onnxmend.runtime.inputs import synthesize
    from onnxmend.runtime.runners import onnx_runner

    started = time.perf_counter()
    result = convert(source, out_dir, ConvertOptions(provider="cpu", seed=seed))
    fixed = Path(out_dir) / "model.onnx"
    feeds = synthesize(result.export.inputs, seed=seed)
    reference = onnx_runner(fixed, provider="cpu", opt_level="all").run(feeds)
    comparator = Comparator(Tolerance(PARITY_BOUND, 0.0), reference="the fixed graph on CPU")
    target = onnx_runner(fixed, provider=provider, opt_level="all", tf32=False)  # type: ignore[arg-type]
    comparison = comparator.compare(reference, target.run(feeds))
    row: dict[str, object] = {
        "source": source, "provider": target.runner.session.provider, "verdict": comparison.verdict,
        "max_abs_scaled": comparison.worst_max_abs_scaled, "failures": comparison.failures,
        "vs_source": result.validation.verdict,
        "vs_source_max_abs_scaled": result.validation.comparison.worst_max_abs_scaled,
        "nodes": f"{result.before.nodes} -> {result.after.nodes}",
    }
    if provider == "cuda":  # what TF32 would have cost: information, not a criterion
        tf32 = onnx_runner(fixed, provider="cuda", opt_level="all", tf32=True).run(feeds)
        row["tf32_on_max_abs_scaled"] = comparator.compare(reference, tf32).worst_max_abs_scaled
    row["seconds"] = round(time.perf_counter() - started, 2)
    return row


def placement_step(source: str, out_dir: str, provider: str, seed: int = 0,
                   converted: bool = False) -> dict[str, object]:
    """The int8 artifact for ``provider`` (quantize with that target) and where each of its nodes ran;
    ``converted``: the parity step of this run already wrote ``out_dir/model.onnx``."""
    import onnx

    from onnxmend.flows.convert import ConvertOptions, convert
    from onnxmend.flows.quantize import quantize

    started = time.perf_counter()
    fp32 = Path(out_dir)
    if not converted:
        convert(source, fp32, ConvertOptions(provider="cpu", seed=seed))
    result = quantize(fp32 / "model.onnx", fp32 / "int8", provider=provider,  # type: ignore[arg-type]
                      seed=seed, latency_runs=10)
    op_of = {n.name: n.op_type for n in onnx.load(str(result.paths.int8)).graph.node}
    placement = result.contents.placement
    by_op = {ep: _count([op_of.get(name, FUSED) for name in names]) for ep, names in placement.nodes_by_provider.items()}
    latency = result.contents.latency
    return {
        "source": source, "target": provider, **placement.to_json(), "ops_by_provider": by_op,
        "cpu_fallback_ops": _count([op_of.get(name, FUSED) for name in placement.cpu_fallback]),
        # the accuracy gate; whether int8 is worth shipping (smaller, faster) is timing on a shared machine,
        # reported beside it and not a failure of this check
        "gate_passed": result.contents.accurate, "gate_failures": result.contents.failures,
        "verdict": result.contents.verdict,
        "worth": result.contents.worth.to_json() if result.contents.worth else None,
        "quantized_nodes": len(result.plan.selected), "latency": latency.to_json() if latency else None,
        "seconds": round(time.perf_counter() - started, 2),
    }


def bench_step(source: str, out_dir: str, provider: str, seconds: float, seed: int = 0,
               converted: bool = False) -> dict[str, object]:
    """raw vs fixed (I/O binding on CUDA) and the torch source eager, with onnxmend bench."""
    from onnxmend.flows.bench import bench
    from onnxmend.flows.convert import ConvertOptions, convert
    from onnxmend.runtime.bench.options import BenchOptions

    out = Path(out_dir)
    if not converted:
        convert(source, out, ConvertOptions(provider="cpu", seed=seed))
    providers = ("cpu", "cuda") if provider == "cuda" else ("cpu",)
    options = BenchOptions(providers=providers, seconds=seconds, warmup=5, rounds=5, memory=False, seed=seed)
    result = bench([out / "raw.onnx", out / "model.onnx"], source=source, options=options)
    rows = [{"subject": r.label, "provider": r.provider, "status": r.status, "reason": r.reason,
             "p50_ms": r.stats.p50_ms if r.stats else None, "p90_ms": r.stats.p90_ms if r.stats else None,
             "speedup_vs_raw": r.speedup.median if r.speedup else None, "notes": r.notes} for r in result.results]
    return {"source": source, "rows": rows, "notes": result.notes, "settings": result.settings,
            "seconds": round(result.seconds, 2)}


def _count(items: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for item in items:
        counts[item] = counts.get(item, 0) + 1
    return dict(sorted(counts.items()))


# --------------------------------------------------------------------------------- orchestration (parent)

class Budget:
    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def left(self) -> float:
        return self.deadline - time.monotonic() - RESERVE_S


class Run:
    """The worker the steps run in, the budget they share and the JSON they fill."""

    def __init__(self, args: argparse.Namespace) -> None:
        from onnxmend.core.worker import Worker

        self.args = args
        self.budget = Budget(args.timeout)
        path = os.pathsep.join([BENCH_DIR, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        # tf2onnx's optimiser walks sets: a fixed hash seed keeps Keras exports the same from run to run.
        self.worker = Worker(env={"PYTHONPATH": path, "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED", "0")})
        self.report: dict[str, object] = {"schema": SCHEMA, "provider": args.provider, "quick": args.quick,
                                          "timeout_s": args.timeout, "parity_bound": PARITY_BOUND,
                                          "steps": {}, "failures": [], "skipped": []}

    def step(self, name: str, target: str, what: str, **kwargs: object) -> dict[str, object] | None:
        """One call in the worker with the time left; a failure or a skip is recorded, never raised."""
        from onnxmend.core.errors import OnnxmendError
        from onnxmend.core.worker import RemoteFailure

        left = self.budget.left()
        if left < MIN_STEP_S:
            self.report["skipped"].append(f"{what}: {left:.0f} s of the budget left")  # type: ignore[attr-defined]
            return None
        try:
            return self.worker.call(f"gpu_check:{target}", actor="the check's worker process", doing=what,
                                    timeout_s=left, **kwargs)
        except (OnnxmendError, RemoteFailure) as exc:
            self.fail(name, f"{what}: {exc}")
            return None

    def fail(self, name: str, message: str) -> None:
        self.report["failures"].append(message)  # type: ignore[attr-defined]
        self.report["steps"].setdefault(name + "_errors", []).append(message)  # type: ignore[attr-defined]


def sources(args: argparse.Namespace) -> list[str]:
    if args.models:
        return [s.strip() for s in args.models.split(",") if s.strip()]
    from onnxmend.models import zoo_names

    names = QUICK_ZOO if args.quick else tuple(zoo_names())
    return [f"zoo:{n}" for n in names] + list(EXTRA_SOURCES)


def run_checks(run: Run) -> None:
    """probe, then (when the provider starts) parity, placement and bench."""
    args, steps = run.args, run.report["steps"]
    probe = run.step("probe", "probe_step", "probing the CUDA provider", provider=args.provider)
    steps["probe"] = probe  # type: ignore[index]
    if probe is None:
        return
    if not probe["starts"]:
        run.report["status"] = "CUDA unavailable" if probe["gpus"] else "no GPU"
        run.report["reason"] = probe["reason"]
        return
    out = Path(args.work).resolve()
    parity, converted = [], set()
    steps["parity"] = parity  # type: ignore[index]
    for source in sources(args):
        row = run.step("parity", "parity_step", f"checking the parity of {source}", source=source,
                       out_dir=str(out / _slug(source)), provider=args.provider, seed=args.seed)
        if row is not None:
            parity.append(row)
            converted.add(source)
            if row["verdict"] != "pass":
                run.report["failures"].append(f"parity of {source}: {'; '.join(row['failures'])}")  # type: ignore[attr-defined]
    placement = run.step("placement", "placement_step", f"quantizing {args.placement_model} and placing its nodes",
                         source=args.placement_model, out_dir=str(out / _slug(args.placement_model)),
                         provider=args.provider, seed=args.seed, converted=args.placement_model in converted)
    steps["placement"] = placement  # type: ignore[index]
    if placement is not None and not placement["gate_passed"]:
        run.report["failures"].append(f"int8 gate of {args.placement_model}: {placement['gate_failures']}")  # type: ignore[attr-defined]
    steps["bench"] = run.step("bench", "bench_step", f"benchmarking {args.bench_model}", source=args.bench_model,
                              out_dir=str(out / _slug(args.bench_model)), provider=args.provider,
                              seconds=args.bench_seconds, seed=args.seed, converted=args.bench_model in converted)


def _slug(source: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in source)


def exit_code(report: dict[str, object]) -> int:
    if report["failures"]:
        return EXIT_FAILED
    if report.get("status") in NOT_RUN or report["skipped"]:
        return EXIT_NOT_VERIFIED
    return EXIT_OK


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="gpu-check.json", help="the JSON report (written atomically)")
    parser.add_argument("--work", default="gpu-check-work", help="folder for the converted models")
    parser.add_argument("--provider", choices=("cuda", "cpu"), default="cuda",
                        help="cpu rehearses every step without a GPU (parity is then CPU against CPU)")
    parser.add_argument("--quick", action="store_true", help="one zoo model per seed family, shorter benches")
    parser.add_argument("--timeout", type=float, default=280.0, help="seconds for the whole run (default 280)")
    parser.add_argument("--models", default=None, help="comma-separated sources for the parity step "
                        "(default: the zoo, or its --quick subset, and keras:ConvNeXtTiny)")
    parser.add_argument("--placement-model", default="zoo:bert-encoder-torch")
    parser.add_argument("--bench-model", default="zoo:resnet18-torch")
    parser.add_argument("--bench-seconds", type=float, default=None, help="per subject and cell (1, or 0.3 --quick)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    if args.bench_seconds is None:
        args.bench_seconds = 0.3 if args.quick else 1.0
    return args


def main(argv: list[str] | None = None) -> int:
    from onnxmend.core.fileio import write_json

    args = parse_args(argv)
    started = time.perf_counter()
    run = Run(args)
    try:
        run_checks(run)
    finally:
        run.worker.close()
        report = run.report
        report["status"] = report.get("status") or ("failed" if report["failures"] else
                                                    "incomplete" if report["skipped"] else "passed")
        report["exit_code"] = exit_code(report)
        report["seconds"] = round(time.perf_counter() - started, 2)
        write_json(args.out, report)
    print(f"{report['status']}: {len(report['failures'])} failure(s), {len(report['skipped'])} skipped; "  # type: ignore[arg-type]
          f"wrote {args.out} in {report['seconds']} s")
    return int(report["exit_code"])  # type: ignore[call-overload]


if __name__ == "__main__":
    sys.exit(main())
