"""bench/gpu_check.py without a GPU: it says "no GPU" in its JSON and exits 3; every step's code path runs
with ``--provider cpu``; a failing step is recorded and the others still run; a spent budget skips steps."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from onnxmend.runtime.session import cuda_available

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "bench" / "gpu_check.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_check_under_test", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(tmp_path: Path, *args: str) -> tuple[int, dict]:
    out = tmp_path / "gpu-check.json"
    done = subprocess.run([sys.executable, str(SCRIPT), "--out", str(out), "--work", str(tmp_path / "work"), *args],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert out.is_file(), done.stdout + done.stderr
    return done.returncode, json.loads(out.read_text())


@pytest.mark.skipif(cuda_available(), reason="a CUDA provider starts here: the script runs the real checks")
def test_without_a_gpu_it_says_no_gpu_and_exits_3(tmp_path: Path) -> None:
    code, report = _run(tmp_path, "--quick")
    assert code == 3 and report["exit_code"] == 3
    assert report["status"] == "no GPU" and report["steps"]["probe"]["starts"] is False
    assert "CUDA" in report["reason"] and report["failures"] == [] and "parity" not in report["steps"]


def test_every_step_runs_on_cpu_and_a_failing_model_does_not_stop_the_others(tmp_path: Path) -> None:
    code, report = _run(tmp_path, "--provider", "cpu", "--models", "zoo:no-such-model,zoo:depthwise-torch",
                        "--placement-model", "zoo:vit-block-torch", "--bench-model", "zoo:depthwise-torch",
                        "--bench-seconds", "0.05")
    assert code == 1 and report["status"] == "failed"
    assert len(report["failures"]) == 1 and report["failures"][0].startswith(
        "checking the parity of zoo:no-such-model: There is no zoo model 'no-such-model'")
    (parity,) = report["steps"]["parity"]
    assert (parity["source"], parity["provider"], parity["verdict"]) == ("zoo:depthwise-torch", "CPUExecutionProvider", "pass")
    assert parity["max_abs_scaled"] <= 1e-4 and parity["vs_source"] == "pass"
    placement = report["steps"]["placement"]
    assert placement["target"] == "cpu" and placement["gate_passed"] and placement["quantized_nodes"] == 4
    # int8 may time slower than fp32 on a loaded machine: reported, not a failure of the check
    assert placement["verdict"] in ("pass", "no-gain") and "speedup" in placement["worth"]
    assert placement["ops_by_provider"]["CPUExecutionProvider"]["MatMulInteger"] == 4 and placement["cpu_fallback"] == []
    rows = {(r["subject"], r["provider"]): r for r in report["steps"]["bench"]["rows"]}
    assert set(rows) == {("raw", "cpu"), ("model", "cpu"), ("source", "cpu")}
    assert all(r["status"] == "ok" and r["p50_ms"] > 0 for r in rows.values())


def test_a_spent_budget_skips_steps_and_exits_3(tmp_path: Path) -> None:
    code, report = _run(tmp_path, "--provider", "cpu", "--timeout", "1")
    assert code == 3 and report["status"] == "incomplete"
    assert report["skipped"] and report["skipped"][0].startswith("probing the CUDA provider:")


def test_exit_codes_failures_first_then_not_verified() -> None:
    exit_code = _module().exit_code
    assert exit_code({"failures": [], "skipped": []}) == 0
    assert exit_code({"failures": ["x"], "skipped": ["y"], "status": "no GPU"}) == 1
    assert exit_code({"failures": [], "skipped": [], "status": "no GPU"}) == 3
    assert exit_code({"failures": [], "skipped": ["bench: 3 s of the budget left"]}) == 3


def test_the_quick_list_is_zoo_names_and_convnext() -> None:
    module = _module()
    from onnxmend.models import zoo_names

    assert set(module.QUICK_ZOO) <= set(zoo_names())
    args = module.parse_args(["--quick"])
    assert module.sources(args)[-1] == "keras:ConvNeXtTiny" and len(module.sources(args)) == len(module.QUICK_ZOO) + 1
    assert len(module.sources(module.parse_args([]))) == len(zoo_names()) + 1
