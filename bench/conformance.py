"""The passes on ONNX's conformance corpus: every preset over every backend node test onnxruntime runs.

The onnx package generates its backend node tests (``onnx.backend.test.case.node.collect_testcases``:
one small model per case, seeded inputs, the outputs of its numpy reference). A case is kept when its
inputs and outputs are tensors and onnxruntime (CPU, one thread, its own optimisations off) runs the
original model and matches the expected outputs at the case's tolerance (rtol 1e-3, atol 1e-7). Then,
for each preset, with the numeric gate and without it (what the passes do on their own), the pipeline
rewrites the model and the rewritten model runs on the case's inputs:

- *bitwise*: every output has the bytes onnxruntime gave for the original model;
- *within tolerance*: not bitwise, but within the gate's dtype tolerance of the original's outputs
  (float64 1e-9, float32 1e-5, float16 2e-3, bfloat16 2e-2, relative to each value and to the output's
  scale ``max(1, max|x|)``; integers, booleans and strings exact; NaN where the original has NaN) and
  within the case's own tolerance of the expected outputs;
- *mismatch*: anything else (another shape or dtype, a value out of tolerance, a rewrite that does not run).

A *pass crash* is a pass that raised (the manager rejects it and names it), a precondition check that
raised, a rewrite the checker or strict shape inference refused, or the pipeline itself raising. Dynamic
dims: the rewritten graph's inputs and outputs must keep every dim_param. Batch: where the leading axis of
the inputs can be made dynamic (the original still runs at batch 2, 3 or 5 and the outputs follow the batch),
the pipeline also rewrites that variant, and its outputs must stay right at two other batch sizes against
the original variant's. A node test feeds every operand as a graph input, which leaves most passes
nothing to do, so each case with more than one input is also run with all inputs but the first made
initializers holding the case's values (the *constant-parameters* variant, ``+const``: a Conv's weight, a
norm's scale, a Pad's pads become constants, as exporters write them).

Each case runs in a worker process (onnxruntime in a second one), so a hang or a native crash costs that
case, named in the table, never the run. Reproducible: the corpus is generated with onnx's own seeds, the
batch inputs are built from the case's inputs, the gate is seeded.

    .venv/bin/python bench/conformance.py [--cases REGEX] [--presets fix,portable] [--jobs 2] [-o conformance.json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import onnx
from onnx import numpy_helper

ROOT = Path(__file__).resolve().parents[1]
CASE_RTOL, CASE_ATOL = 1e-3, 1e-7
DTYPE_TOL = {"float64": 1e-9, "float32": 1e-5, "float16": 2e-3, "bfloat16": 2e-2}
BATCH_CANDIDATES = (2, 3, 5)
CASE_TIMEOUT_S = 600.0
MODES = ("gated", "ungated")
CONST = " +const"  # the key suffix of the constant-parameters variant
OUTCOMES = ("bitwise", "tolerance", "mismatch")

# ----------------------------------------------------------------------------------------------- the corpus


def collect_cases(pattern: str | None = None) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """The node test cases as picklable dicts (name, model bytes, inputs, expected outputs), and the cases
    left out because an input or output is not a tensor (sequence, map, optional), with why."""
    import onnx.backend.test.case.node as node_cases

    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        cases = node_cases.collect_testcases()
    wanted = re.compile(pattern) if pattern else None
    kept: list[dict[str, Any]] = []
    left_out: dict[str, str] = {}
    for case in sorted(cases, key=lambda c: c.name):
        if wanted is not None and not wanted.search(case.name):
            continue
        try:
            kept.append(_case_dict(case))
        except ValueError as exc:
            left_out[case.name] = str(exc)
    return kept, left_out


def _case_dict(case: Any) -> dict[str, Any]:
    model: onnx.ModelProto = case.model
    values = [vi for vi in (*model.graph.input, *model.graph.output) if not vi.type.HasField("tensor_type")]
    if values:
        raise ValueError(f"{values[0].name} is not a tensor")
    (inputs, outputs), = case.data_sets[:1]
    return {
        "name": case.name, "model": model.SerializeToString(),
        "inputs": _arrays([vi.name for vi in model.graph.input], inputs),
        "expected": _arrays([vi.name for vi in model.graph.output], outputs),
    }


def _arrays(names: Sequence[str], values: Sequence[Any]) -> dict[str, np.ndarray]:
    found = {}
    for name, value in zip(names, values):
        if isinstance(value, onnx.TensorProto):
            value = numpy_helper.to_array(value)
        if not isinstance(value, np.ndarray):
            raise ValueError(f"{name} is a {type(value).__name__}, not a tensor")
        found[name] = value
    return found

# ------------------------------------------------------------------------------------------- comparisons


def outcome(reference: Mapping[str, np.ndarray], expected: Mapping[str, np.ndarray] | None,
            got: Mapping[str, np.ndarray]) -> tuple[str, str]:
    """("bitwise" | "tolerance" | "mismatch", why) for ``got`` against the original's outputs (and the
    case's expected outputs, when given)."""
    if list(reference) != list(got):
        return "mismatch", f"outputs {list(got)} are not {list(reference)}"
    worst = "bitwise"
    for name, ref in reference.items():
        value = np.asarray(got[name])
        if ref.dtype != value.dtype or ref.shape != value.shape:
            return "mismatch", f"{name} is {value.dtype}{list(value.shape)}, was {ref.dtype}{list(ref.shape)}"
        if _bitwise(ref, value):
            continue
        worst = "tolerance"
        if not _close(ref, value, _dtype_tol(ref)):
            return "mismatch", f"{name} differs from the original's output ({_diff(ref, value)})"
        if expected is not None and not _close(np.asarray(expected[name]), value, CASE_RTOL, CASE_ATOL):
            return "mismatch", f"{name} differs from the expected output ({_diff(expected[name], value)})"
    return worst, ""


def _bitwise(a: np.ndarray, b: np.ndarray) -> bool:
    if a.dtype.kind == "O":
        return bool(np.array_equal(a, b))
    return a.tobytes() == b.tobytes()


def _dtype_tol(value: np.ndarray) -> float:
    return 0.0 if value.dtype.kind in "iubOSU" else DTYPE_TOL.get(str(value.dtype), 1e-5)


def _close(ref: np.ndarray, got: np.ndarray, rtol: float, atol: float | None = None) -> bool:
    """Exact for integers, booleans and strings; for floats NaN where the reference has NaN, the same
    infinities, and ``|ref − got| ≤ atol·scale + rtol·|ref|`` (``atol`` defaults to ``rtol``)."""
    ref, got = np.asarray(ref), np.asarray(got)
    if ref.shape != got.shape:
        return False
    if ref.dtype.kind in "iubOSU" or got.dtype.kind in "iubOSU":
        return bool(np.array_equal(ref, got))
    r, g = ref.astype(np.float64), got.astype(np.float64)
    finite = np.isfinite(r)
    if not np.array_equal(np.isnan(r), np.isnan(g)) or not np.array_equal(r[np.isinf(r)], g[np.isinf(r)]):
        return False
    scale = max(1.0, float(np.abs(r[finite]).max()) if finite.any() else 1.0)
    atol = rtol if atol is None else atol
    return bool(np.all(np.abs(r[finite] - g[finite]) <= atol * scale + rtol * np.abs(r[finite])))


def _diff(ref: np.ndarray, got: np.ndarray) -> str:
    r, g = np.asarray(ref).astype(np.float64), np.asarray(got).astype(np.float64)
    with np.errstate(invalid="ignore"):
        d = np.abs(r - g)
    return f"max abs diff {np.nanmax(d) if np.isfinite(d).any() else float('nan'):.3g}"

# ------------------------------------------------------------------------------ one case (in the worker)


def evaluate_case(case: dict[str, Any], presets: Sequence[str], batch: bool = True,
                  constants: bool = True) -> dict[str, Any]:
    """Everything about one case: does onnxruntime run it, and what every preset and mode does to it."""
    from onnxmend.runtime.runners.isolated import shared_worker

    model = onnx.load_from_string(case["model"])
    result: dict[str, Any] = {"name": case["name"], "op": model.graph.node[0].op_type if model.graph.node else ""}
    try:
        reference = _ort(model, case["inputs"], shared_worker())
    except Exception as exc:  # onnxruntime refuses the op, the dtype, or crashed in its worker
        return {**result, "ort": f"does not run: {_line(exc)}"}
    verdict, why = outcome(case["expected"], None, reference)
    if verdict == "mismatch" or not all(_close(case["expected"][n], reference[n], CASE_RTOL, CASE_ATOL) for n in reference):
        return {**result, "ort": f"does not match the expected outputs: {why or 'out of the case tolerance'}"}
    result["ort"] = "ok"
    variant = batch_variant(model, case["inputs"], reference) if batch else None
    result["batch"] = variant.reason if variant is not None and variant.reason else ("checked" if variant else "off")
    for preset in presets:
        for mode in MODES:
            result[f"{preset}/{mode}"] = run_config(model, case, reference, preset, mode == "gated", variant)
    fixed_params = constant_variant(model, case["inputs"]) if constants else None
    if fixed_params is not None:
        with_constants = {**case, "inputs": {k: v for k, v in case["inputs"].items() if k in _input_names(fixed_params)}}
        variant = batch_variant(fixed_params, with_constants["inputs"], reference) if batch else None
        for preset in presets:
            for mode in MODES:
                result[f"{preset}/{mode}{CONST}"] = run_config(fixed_params, with_constants, reference, preset,
                                                              mode == "gated", variant)
    return result


def constant_variant(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray]) -> onnx.ModelProto | None:
    """The case's model with every input but the first made an initializer holding the case's value (a
    Conv's weight, a norm's scale, a Pad's pads, a Reshape's shape): what exporters write, and what most
    passes need before they fire. None when the model has a single input (or an IR version below 4,
    where initializers must also be inputs)."""
    names = [vi.name for vi in model.graph.input]
    if len(names) < 2 or model.ir_version < 4:
        return None
    variant = onnx.ModelProto()
    variant.CopyFrom(model)
    kept = [vi for vi in variant.graph.input if vi.name == names[0]]
    del variant.graph.input[:]
    variant.graph.input.extend(kept)
    variant.graph.initializer.extend(numpy_helper.from_array(np.asarray(feeds[n]), n) for n in names[1:])
    return variant


def _input_names(model: onnx.ModelProto) -> set[str]:
    return {vi.name for vi in model.graph.input}


def run_config(model: onnx.ModelProto, case: Mapping[str, Any], reference: Mapping[str, np.ndarray], preset: str,
               gated: bool, variant: BatchVariant | None) -> dict[str, Any]:
    """One preset in one mode on one case (and on its batch variant)."""
    from onnxmend.runtime.runners.isolated import shared_worker

    found = _pipeline(model, case["inputs"], preset, gated)
    if "rewritten_model" in found:
        fixed = found.pop("rewritten_model")
        found["dims"] = _dims_kept(model, fixed)
        try:
            found["outcome"], found["why"] = outcome(reference, case["expected"], _ort(fixed, case["inputs"], shared_worker()))
        except Exception as exc:
            found["outcome"], found["why"] = "mismatch", f"the rewritten model does not run: {_line(exc)}"
    if variant is not None and not variant.reason:
        found["batch"] = _batch_check(variant, preset, gated)
    return found


def _pipeline(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray], preset: str, gated: bool) -> dict[str, Any]:
    """Run ``preset`` as ``onnxmend fix --preset`` would (layout auto), with the gate on the case's inputs."""
    from onnxmend.core.graph import model_opset
    from onnxmend.flows.layout import layout_context
    from onnxmend.passes.infra.base import PassContext
    from onnxmend.passes.infra.catalogue import resolve
    from onnxmend.passes.infra.manager import run_passes
    from onnxmend.runtime.gate import NumericGate
    from onnxmend.runtime.inspect import guess_framework

    ctx = PassContext(opset=model_opset(model), preset=preset, framework=guess_framework(model),  # type: ignore[arg-type]
                      **layout_context("auto", "keep"))  # type: ignore[arg-type]
    gate = None
    try:
        gate = NumericGate(model, feeds=dict(feeds), seed=0) if gated else None
        fixed, report = run_passes(model, resolve(preset), ctx, gate=gate)
    except Exception as exc:  # the pipeline itself must never raise: that is a crash too
        return {"crashes": [f"the pipeline raised {type(exc).__name__}: {_line(exc)}"], "outcome": "mismatch",
                "why": "the pipeline raised"}
    finally:
        if gate is not None:
            gate.close()
    applied = sorted({r.name for r in report.records if r.status == "applied"})
    crashes, rejected = [], []
    for r in report.rejected:
        is_crash = r.reason.startswith(("the pass raised", "the rewritten graph is invalid"))
        (crashes if is_crash else rejected).append(f"{r.name}: {r.reason}")
    crashes += [f"{name}: {why}" for name, why in report.not_run.items() if "raised" in why]
    return {"rewritten_model": fixed, "applied": applied, "crashes": crashes, "rejected": rejected,
            "unverified": report.unverified_reason if gated else ""}


def _dims_kept(before: onnx.ModelProto, after: onnx.ModelProto) -> str:
    """Empty when every graph input/output keeps its dim_params (and its static dims); else what changed."""
    def dims(graph: onnx.GraphProto) -> dict[str, list[Any]]:
        return {vi.name: [d.dim_param or (d.dim_value if d.HasField("dim_value") else None)
                          for d in vi.type.tensor_type.shape.dim] for vi in (*graph.input, *graph.output)}
    old, new = dims(before.graph), dims(after.graph)
    for name, shape in old.items():
        params = [(i, d) for i, d in enumerate(shape) if isinstance(d, str)]
        kept = new.get(name)
        if kept is None or any(i >= len(kept) or kept[i] != d for i, d in params):
            return f"{name} was {shape}, is {kept}"
    return ""

# ------------------------------------------------------------------------------------------ batch sizes


@dataclass
class BatchVariant:
    """The case's model with its leading input axis made dynamic, and feeds/references at other batches."""

    model: onnx.ModelProto | None = None
    batch: int = 0
    base_feeds: dict[str, np.ndarray] = field(default_factory=dict)  # the case's own, at ``batch``
    feeds: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    outputs: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)
    reason: str = ""  # why the leading axis cannot be made dynamic (empty when it can)


def batch_variant(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray],
                  reference: Mapping[str, np.ndarray]) -> BatchVariant:
    """The leading axis of every input that shares the first input's leading size, made dynamic ``N``;
    kept only when the original then runs at the case's size (same outputs) and at two others, with every
    output declared ``N`` following the batch."""
    from onnxmend.core.graph import infer_shapes
    from onnxmend.runtime.runners.isolated import shared_worker

    shapes = {n: np.shape(v) for n, v in feeds.items()}
    first = next((s for s in shapes.values() if len(s) >= 1), None)
    if first is None or first[0] < 1:
        return BatchVariant(reason="no input with a leading axis")
    n = int(first[0])
    batched = [name for name, s in shapes.items() if len(s) >= 1 and s[0] == n]
    variant = _with_dynamic_batch(model, batched, n, reference)
    try:
        variant = infer_shapes(variant, strict=True)
        same = _ort(variant, feeds, shared_worker())
    except Exception as exc:
        return BatchVariant(reason=f"the original does not take a dynamic batch ({_line(exc, 80)})")
    if outcome(dict(reference), None, same)[0] != "bitwise":
        return BatchVariant(reason="the original's outputs change when the batch is dynamic")
    found = BatchVariant(variant, n, dict(feeds))
    declared = [vi.name for vi in variant.graph.output if vi.type.tensor_type.shape.dim
                and vi.type.tensor_type.shape.dim[0].dim_param == "N"]
    for b in [b for b in BATCH_CANDIDATES if b != n][:2]:
        found.feeds[b] = {k: (_rows(v, b) if k in batched else v) for k, v in feeds.items()}
        try:
            found.outputs[b] = _ort(variant, found.feeds[b], shared_worker())
        except Exception as exc:
            return BatchVariant(reason=f"the original does not run at batch {b} ({_line(exc, 80)})")
        if any(np.shape(found.outputs[b][o])[:1] != (b,) for o in declared):
            return BatchVariant(reason=f"an output does not follow the batch at {b}")
    return found


def _with_dynamic_batch(model: onnx.ModelProto, inputs: Sequence[str], n: int,
                        reference: Mapping[str, np.ndarray]) -> onnx.ModelProto:
    variant = onnx.ModelProto()
    variant.CopyFrom(model)
    del variant.graph.value_info[:]
    for vi in variant.graph.input:
        if vi.name in inputs:
            vi.type.tensor_type.shape.dim[0].dim_param = "N"
    for vi in variant.graph.output:
        dims = vi.type.tensor_type.shape.dim
        if dims and np.ndim(reference[vi.name]) >= 1 and np.shape(reference[vi.name])[0] == n:
            dims[0].dim_param = "N"
    return variant


def _rows(value: np.ndarray, b: int) -> np.ndarray:
    """``b`` rows from ``value``'s ``n``: row ``i`` is row ``i mod n``, its values rolled by ``i // n`` so
    that repeated rows differ (a rewrite that keeps only row 0 shows) while staying in the input's domain."""
    n = value.shape[0]
    rows = [np.roll(np.asarray(value[i % n]).ravel(), i // n).reshape(value.shape[1:]) for i in range(b)]
    return np.stack(rows).astype(value.dtype, copy=False)


def _batch_check(variant: BatchVariant, preset: str, gated: bool) -> dict[str, Any]:
    from onnxmend.runtime.runners.isolated import shared_worker

    assert variant.model is not None
    found = _pipeline(variant.model, variant.base_feeds, preset, gated)
    fixed = found.pop("rewritten_model", None)
    check: dict[str, Any] = {"crashes": found["crashes"], "rewritten": bool(found.get("applied"))}
    if fixed is None:
        return {**check, "outcome": "mismatch", "why": found.get("why", "")}
    check["dims"] = _dims_kept(variant.model, fixed)
    worst = "bitwise"
    for b, feeds in variant.feeds.items():
        try:
            verdict, why = outcome(variant.outputs[b], None, _ort(fixed, feeds, shared_worker()))
        except Exception as exc:
            verdict, why = "mismatch", f"does not run at batch {b}: {_line(exc)}"
        if verdict == "mismatch":
            return {**check, "outcome": "mismatch", "why": f"batch {b}: {why}"}
        worst = "tolerance" if verdict == "tolerance" else worst
    return {**check, "outcome": worst, "why": ""}

# -------------------------------------------------------------------------------------------- helpers


def _ort(model: onnx.ModelProto, feeds: Mapping[str, np.ndarray], worker: Any) -> dict[str, np.ndarray]:
    """``model`` on onnxruntime CPU, one thread, its optimisations off, in ``worker``."""
    from onnxmend.runtime.runners.isolated import IsolatedOnnxRunner

    runner = IsolatedOnnxRunner(model, "the case's model", worker, provider="cpu", threads=1, opt_level="disable")
    return runner.run(dict(feeds))


def _line(exc: BaseException, limit: int = 200) -> str:
    from onnxmend.core.errors import first_line

    return first_line(exc, limit)

# ------------------------------------------------------------------------------------- the whole corpus


def run_corpus(cases: Sequence[dict[str, Any]], presets: Sequence[str], jobs: int = 1, batch: bool = True,
               progress: Callable[[str], None] | None = None, constants: bool = True) -> list[dict[str, Any]]:
    """Every case in a worker process of its own (``jobs`` at a time); a case whose worker hangs or dies
    comes back with ``harness`` saying so."""
    import threading

    from onnxmend.core.worker import Worker

    local = threading.local()
    workers: list[Worker] = []

    def one(case: dict[str, Any]) -> dict[str, Any]:
        if not hasattr(local, "worker"):
            local.worker = Worker(env={"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
            workers.append(local.worker)
        try:
            found = local.worker.call("bench.conformance:evaluate_case", actor="the conformance worker",
                                      doing=f"evaluating {case['name']}", timeout_s=CASE_TIMEOUT_S,
                                      case=case, presets=list(presets), batch=batch, constants=constants)
        except Exception as exc:  # a hang, a native crash or a bug in the harness: this case only
            found = {"name": case["name"], "ort": "ok", "harness": f"{type(exc).__name__}: {_line(exc)}"}
        if progress is not None:
            progress(case["name"])
        return found

    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            return list(pool.map(one, cases))
    finally:
        for worker in workers:
            worker.close()


def summarize(results: Sequence[dict[str, Any]], presets: Sequence[str], left_out: Mapping[str, str]) -> dict[str, Any]:
    """Counts per preset and mode (the table), and the cases behind every failure."""
    runnable = [r for r in results if r.get("ort") == "ok" and "harness" not in r]
    counts: dict[str, dict[str, int]] = {}
    failures: dict[str, list[str]] = {}
    for suffix in ("", CONST):
        for preset in presets:
            for mode in MODES:
                key = f"{preset}/{mode}{suffix}"
                counts[key], failures[key] = _count([r for r in runnable if key in r], key)
    return {
        "cases": len(results) + len(left_out), "tensor_cases": len(results), "ort_runnable": len(runnable),
        "harness_failures": {r["name"]: r["harness"] for r in results if "harness" in r},
        "batch_variants": sum(1 for r in runnable if r.get("batch") == "checked"),
        "constant_variants": sum(1 for r in runnable if any(k.endswith(CONST) for k in r)),
        "per_config": counts, "failures": failures,
    }


def _count(runnable: Sequence[dict[str, Any]], key: str) -> tuple[dict[str, int], list[str]]:
    c = dict.fromkeys(("cases", "rewritten", *OUTCOMES, "pass_crashes", "gate_rejections", "unverified", "dims_checked",
                       "dims_preserved", "batch_checked", "batch_rewritten", "batch_ok", "batch_mismatch"), 0)
    bad: list[str] = []
    for r in runnable:
        got = r[key]
        c["cases"] += 1
        c["rewritten"] += bool(got.get("applied"))
        c[got["outcome"]] += 1
        c["pass_crashes"] += bool(got["crashes"])
        c["gate_rejections"] += bool(got.get("rejected"))
        c["unverified"] += bool(got.get("unverified"))
        c["dims_checked"] += "dims" in got
        c["dims_preserved"] += got.get("dims") == ""
        if got["outcome"] == "mismatch":
            bad.append(f"{r['name']}: mismatch: {got['why']}")
        bad += [f"{r['name']}: crash: {why}" for why in got["crashes"]]
        if got.get("dims"):
            bad.append(f"{r['name']}: dims changed: {got['dims']}")
        b = got.get("batch")
        if b is not None:
            c["batch_checked"] += 1
            c["batch_rewritten"] += b["rewritten"]
            c["batch_ok"] += b["outcome"] != "mismatch"
            c["batch_mismatch"] += b["outcome"] == "mismatch"
            c["pass_crashes"] += bool(b["crashes"]) and not got["crashes"]
            c["dims_checked"] += "dims" in b
            c["dims_preserved"] += b.get("dims") == ""
            if b["outcome"] == "mismatch":
                bad.append(f"{r['name']} (dynamic batch): mismatch: {b['why']}")
            bad += [f"{r['name']} (dynamic batch): crash: {why}" for why in b["crashes"]]
            if b.get("dims"):
                bad.append(f"{r['name']} (dynamic batch): dims changed: {b['dims']}")
    return c, bad


ROWS = (
    ("cases", "cases"), ("rewritten", "rewritten"), ("bitwise", "bitwise equal"), ("tolerance", "within tolerance"),
    ("mismatch", "mismatches"), ("pass_crashes", "pass crashes"), ("gate_rejections", "gate rejections"),
    ("unverified", "gate unavailable"), ("dims_preserved", "dynamic dims preserved"),
    ("batch_ok", "batch-size checks right"), ("batch_mismatch", "batch-size mismatches"),
)


def table(summary: Mapping[str, Any]) -> str:
    """The counts as a Markdown table, one column per preset and mode."""
    keys = list(summary["per_config"])
    lines = [
        f"cases {summary['cases']} · tensor-only {summary['tensor_cases']} · onnxruntime runs and matches "
        f"{summary['ort_runnable']} · with a dynamic-batch variant {summary['batch_variants']} · with a constant-"
        f"parameters variant ({CONST.strip()}) {summary['constant_variants']} · harness failures "
        f"{len(summary['harness_failures'])}", "",
        "| | " + " | ".join(keys) + " |", "|---|" + "---:|" * len(keys),
    ]
    for field_name, label in ROWS:
        cells = []
        for k in keys:
            c = summary["per_config"][k]
            value = c[field_name]
            if field_name == "dims_preserved":
                value = f"{value}/{c['dims_checked']}"
            elif field_name.startswith("batch_"):
                value = f"{value}/{c['batch_checked']}"
            cells.append(str(value))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def versions() -> dict[str, str]:
    import onnxruntime

    from onnxmend import __version__

    return {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "numpy": np.__version__,
            "onnxmend": __version__}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", help="a regular expression; only the cases whose name it matches")
    parser.add_argument("--presets", default="fix,portable", help="comma-separated presets (default fix,portable)")
    parser.add_argument("--jobs", type=int, default=1, help="cases evaluated at once (worker processes)")
    parser.add_argument("--no-batch", action="store_true", help="skip the dynamic-batch variants")
    parser.add_argument("--no-constants", action="store_true", help="skip the constant-parameters variants")
    parser.add_argument("-o", "--output", default="conformance.json", help="the JSON written (default conformance.json)")
    args = parser.parse_args(argv)
    presets = [p for p in args.presets.split(",") if p]
    start = time.perf_counter()
    cases, left_out = collect_cases(args.cases)
    done = [0]

    def tick(name: str) -> None:
        done[0] += 1
        if done[0] % 100 == 0:
            print(f"  {done[0]}/{len(cases)} cases ({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)

    results = run_corpus(cases, presets, args.jobs, not args.no_batch, tick, not args.no_constants)
    summary = summarize(results, presets, left_out)
    seconds = time.perf_counter() - start
    print(table(summary))
    for key, lines in summary["failures"].items():
        for line in lines:
            print(f"{key}: {line}")
    for name, why in summary["harness_failures"].items():
        print(f"harness: {name}: {why}")
    print(f"{seconds:.0f} s")
    report = {"command": " ".join(["bench/conformance.py", *(argv if argv is not None else sys.argv[1:])]),
              "seconds": round(seconds, 1), "versions": versions(), "tolerances": _tolerances(), **summary,
              "left_out": dict(left_out), "results": results}
    Path(args.output).write_text(json.dumps(report, indent=1, default=str) + "\n")
    failed = any(c["mismatch"] or c["pass_crashes"] or c["batch_mismatch"] for c in summary["per_config"].values())
    return 1 if failed or summary["harness_failures"] else 0


def _tolerances() -> dict[str, object]:
    return {"against the original's outputs (rtol = atol·scale)": DTYPE_TOL, "integers, booleans, strings": "exact",
            "against the expected outputs": {"rtol": CASE_RTOL, "atol": CASE_ATOL}}


if __name__ == "__main__":
    sys.exit(main())
