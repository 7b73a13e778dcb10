"""Tests for onnxmend bench: statistics, interleaving, report schema, CUDA skip rows, CLI errors, end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from onnx import TensorProto, helper

from onnxmend.cli.commands.bench import command
from onnxmend.core.errors import OnnxmendError
from onnxmend.core.fileio import save_model
from onnxmend.core.interface import source_layout_specs, write_interface
from onnxmend.flows.bench import bench
from onnxmend.runtime.bench import cells as bench_mod
from onnxmend.runtime.bench.cells import fixed_batch, resolve_baseline
from onnxmend.runtime.bench.engine import Samples, measure_interleaved, plan_blocks
from onnxmend.runtime.bench.options import BenchOptions
from onnxmend.runtime.bench.results import round_speedups, summarize, summarize_ratio, write_report
from onnxmend.runtime.runners import ort_runner as ort_runner_mod

FAST = dict(warmup=1, runs=6, rounds=3, memory=False, providers=("cpu",))


def _model(batch: int | str = "batch", channels_last: bool = False) -> onnx.ModelProto:
    """x -> Relu -> Mul(2) -> y, with a dynamic or fixed batch."""
    shape = [batch, 4, 4, 3] if channels_last else [batch, 3, 4, 4]
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, shape)
    two = helper.make_tensor("two", TensorProto.FLOAT, [], [2.0])
    nodes = [helper.make_node("Relu", ["x"], ["r"]), helper.make_node("Mul", ["r", "two"], ["y"])]
    graph = helper.make_graph(nodes, "tiny", [x], [y], [two])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    return save_model(_model(), tmp_path / "tiny.onnx")


class FakeClock:
    """Advances by the cost of whatever ran since the last read; subjects append to ``log``."""

    def __init__(self) -> None:
        self.now = 0
        self.log: list[str] = []

    def __call__(self) -> int:
        return self.now

    def subject(self, name: str, cost_ns: int):
        def run() -> None:
            self.log.append(name)
            self.now += cost_ns

        return run


# ----------------------------------------------------------------------------------------- statistics


def test_summarize_percentiles_std_throughput() -> None:
    samples = [i * 1_000_000 for i in range(1, 101)]  # 1..100 ms
    stats = summarize(samples, batch=8, cold_ns=250_000_000)
    assert stats.runs == 100
    assert stats.p50_ms == pytest.approx(50.5)
    assert stats.p90_ms == pytest.approx(90.1)
    assert stats.p99_ms == pytest.approx(99.01)
    assert stats.p10_ms == pytest.approx(10.9)
    assert stats.mean_ms == pytest.approx(50.5)
    assert stats.std_ms == pytest.approx(float(np.std(np.arange(1, 101), ddof=1)))
    assert stats.throughput == pytest.approx(8 * 1000 / 50.5)
    assert (stats.min_ms, stats.max_ms, stats.cold_ms) == (1.0, 100.0, 250.0)


def test_summarize_single_sample_has_zero_std_and_empty_is_an_error() -> None:
    assert summarize([2_000_000], batch=1).std_ms == 0.0
    with pytest.raises(ValueError, match="no timed runs"):
        summarize([], batch=1)


def test_round_speedups_are_pairwise_and_spread_is_p10_p90() -> None:
    baseline = [[10, 10, 10], [20, 20, 20], [10, 12, 14]]
    faster = [[5, 5, 5], [10, 10, 10], [6, 6, 6]]  # twice as fast in every round, despite drift
    speedups = round_speedups(baseline, faster)
    assert speedups == pytest.approx([2.0, 2.0, 2.0])
    ratio = summarize_ratio("a", [1.0, 2.0, 3.0, 4.0, 5.0])
    assert (ratio.median, ratio.p10, ratio.p90, ratio.rounds) == pytest.approx((3.0, 1.4, 4.6, 5))


def test_plan_blocks_splits_runs_and_fills_budget() -> None:
    assert plan_blocks(1e6, runs=10, budget_s=None, rounds=3) == [4, 3, 3]
    assert plan_blocks(1e6, runs=2, budget_s=None, rounds=10) == [1, 1]
    assert plan_blocks(1e6, runs=None, budget_s=1.0, rounds=10) == [100] * 10  # 1 s / 10 rounds / 1 ms
    assert plan_blocks(1e6, runs=50, budget_s=1.0, rounds=10) == [5] * 10  # runs caps the budget
    assert plan_blocks(5e9, runs=None, budget_s=1.0, rounds=2) == [1, 1]  # never zero runs


# ------------------------------------------------------------------------------------------ engine


def test_rounds_interleave_subjects_in_order() -> None:
    clock = FakeClock()
    fns = [clock.subject("A", 1000), clock.subject("B", 3000)]
    samples, notes = measure_interleaved(fns, warmup=2, runs=3, budget_s=None, rounds=3, clock=clock)
    assert clock.log == ["A", "A", "B", "B"] + ["A", "B", "B", "A", "A", "B"]  # warm-up, then rotating rounds
    assert [s.rounds for s in samples] == [[[1000]] * 3, [[3000]] * 3]
    assert [s.warmup_ns for s in samples] == [[1000, 1000], [3000, 3000]]
    assert notes == []


def test_round_start_rotates_over_three_subjects() -> None:
    clock = FakeClock()
    fns = [clock.subject(name, 10) for name in "ABC"]
    measure_interleaved(fns, warmup=0, runs=3, budget_s=None, rounds=3, clock=clock)
    assert "".join(clock.log) == "ABC" + "BCA" + "CAB"


def test_budget_gives_each_subject_equal_time_per_round() -> None:
    clock = FakeClock()
    fns = [clock.subject("A", 1_000_000), clock.subject("B", 4_000_000)]
    samples, _ = measure_interleaved(fns, warmup=1, runs=None, budget_s=0.02, rounds=2, clock=clock)
    assert [[len(block) for block in s.rounds] for s in samples] == [[10, 10], [2, 2]]
    assert clock.log[2:14] == ["A"] * 10 + ["B"] * 2  # round 1: A's block, then B's


def test_slow_runs_stop_at_the_deadline_with_a_note() -> None:
    clock = FakeClock()
    costs = iter([1_000] + [10**9] * 100)  # warm-up predicts 1 us, then every run takes 1 s

    def run() -> None:
        clock.now += next(costs)

    samples, notes = measure_interleaved([run], warmup=1, runs=None, budget_s=0.001, rounds=5, clock=clock)
    assert len(samples[0].rounds) == 1
    assert notes and re.search(r"stopped after 1 of 5 rounds", notes[0])


def test_cold_timing_is_carried_and_excluded_from_timed_runs() -> None:
    clock = FakeClock()
    fn = clock.subject("A", 500)
    samples, _ = measure_interleaved([fn], 0, 2, None, 2, clock, [Samples(cold_ns=9_999)])
    assert samples[0].cold_ns == 9_999
    assert samples[0].timed_ns == [500, 500]


# ---------------------------------------------------------------------------------- model handling


def test_fixed_batch_and_source_layout_specs() -> None:
    assert fixed_batch(_model("batch")) is None
    assert fixed_batch(_model(2)) == 2
    nchw = _model("batch")
    write_interface(nchw, {"x": {"kind": "input", "perm": [0, 3, 1, 2], "was": "NHWC", "now": "NCHW"}})
    assert source_layout_specs(nchw)[0].shape == ("batch", 4, 4, 3)


def test_baseline_by_name_index_and_errors() -> None:
    labels = ["raw", "fixed", "source"]
    assert resolve_baseline(0, labels) == "raw"
    assert resolve_baseline("2", labels) == "source"
    assert resolve_baseline("fixed", labels) == "fixed"
    with pytest.raises(OnnxmendError, match="names no subject"):
        resolve_baseline("nope", labels)
    with pytest.raises(OnnxmendError, match="out of range"):
        resolve_baseline(3, labels)


def test_bench_feeds_nchw_artifact_the_same_values_transposed(tmp_path: Path, monkeypatch) -> None:
    seen: dict[str, np.ndarray] = {}
    real = bench_mod.onnx_subject

    def spy(artifact, provider, feeds, options):
        seen[artifact.label] = feeds["x"]
        return real(artifact, provider, feeds, options)

    monkeypatch.setattr(bench_mod, "onnx_subject", spy)
    nchw = _model("batch")
    write_interface(nchw, {"x": {"kind": "input", "perm": [0, 3, 1, 2], "was": "NHWC", "now": "NCHW"}})
    paths = [save_model(_model("batch", channels_last=True), tmp_path / "nhwc.onnx"),
             save_model(nchw, tmp_path / "nchw.onnx")]
    bench(paths, options=BenchOptions(**FAST))
    assert seen["nhwc"].shape == (1, 4, 4, 3) and seen["nchw"].shape == (1, 3, 4, 4)
    np.testing.assert_array_equal(seen["nchw"], seen["nhwc"].transpose(0, 3, 1, 2))


# ------------------------------------------------------------------------------------ results, JSON


def test_end_to_end_cpu_json_schema_and_chart(tiny: Path, tmp_path: Path) -> None:
    fixed = save_model(_model(1), tmp_path / "fixed1.onnx")
    result = bench([tiny, fixed], options=BenchOptions(**{**FAST, "batches": (1, 2)}))
    rows = {(r.label, r.batch): r for r in result.results}
    assert set(rows) == {("tiny", 1), ("tiny", 2), ("fixed1", 1), ("fixed1", 2)}
    assert rows[("fixed1", 2)].status == "skipped"
    assert re.search(r"batch is fixed at 1", rows[("fixed1", 2)].reason)
    assert any("fixed1: the model's batch is fixed at 1" in n for n in result.notes)
    ok = rows[("tiny", 2)]
    assert ok.status == "ok" and ok.stats.runs == 6 and len(ok.round_p50_ms) == 3
    assert ok.stats.throughput == pytest.approx(2 * 1000 / ok.stats.mean_ms)
    assert rows[("tiny", 1)].speedup.median == pytest.approx(1.0)
    json_path, png_path = write_report(result, tmp_path / "out")
    data = json.loads(json_path.read_text())
    assert data["schema"] == "onnxmend.bench/1" and data["baseline"] == "tiny"
    assert {"cpu_model", "logical_cores", "cpu_flags", "gpus", "versions"} <= set(data["machine"])
    assert "onnx" in data["machine"]["versions"]
    assert data["settings"]["runs"] == 6 and data["settings"]["providers"] == ["cpu"]
    row = next(r for r in data["results"] if r["label"] == "tiny" and r["batch"] == 1)
    for key in ("p10_ms", "p50_ms", "p90_ms", "p99_ms", "mean_ms", "std_ms", "throughput", "cold_ms"):
        assert isinstance(row["stats"][key], float), key
    assert set(row["speedup"]) == {"baseline", "median", "p10", "p90", "rounds"}
    assert row["status"] == "ok" and row["reason"] is None and row["memory"] is None
    skipped = next(r for r in data["results"] if r["status"] == "skipped")
    assert skipped["stats"] is None and isinstance(skipped["reason"], str)
    assert png_path is not None and png_path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_memory_probe_runs_in_a_fresh_process(tiny: Path) -> None:
    result = bench([tiny], options=BenchOptions(**{**FAST, "memory": True}))
    memory = result.results[0].memory
    assert memory is not None and memory.baseline_mb > 0
    assert memory.peak_mb >= memory.baseline_mb and memory.growth_mb == pytest.approx(
        memory.peak_mb - memory.baseline_mb, abs=0.11)


def test_cuda_unavailable_gives_skip_rows_with_reason(tiny: Path, monkeypatch) -> None:
    monkeypatch.setattr(bench_mod, "cuda_unavailable_reason", lambda: "no usable GPU here")
    result = bench([tiny], options=BenchOptions(**{**FAST, "providers": ("cpu", "cuda")}))
    by_provider = {r.provider: r for r in result.results}
    assert by_provider["cpu"].status == "ok"
    assert by_provider["cuda"].status == "skipped"
    assert re.fullmatch(r"CUDA unavailable: no usable GPU here", by_provider["cuda"].reason)


def test_cuda_session_failure_is_a_skip_not_a_crash(tiny: Path, monkeypatch) -> None:
    monkeypatch.setattr(bench_mod, "cuda_unavailable_reason", lambda: None)

    def refuse(*args, **kwargs):
        raise OnnxmendError("CUDA was requested, but the CUDA provider failed to create a session (boom).")

    monkeypatch.setattr(ort_runner_mod, "create_session", refuse)
    row = bench([tiny], options=BenchOptions(**{**FAST, "providers": ("cuda",)})).results[0]
    assert row.status == "skipped" and re.search(r"failed to create a session \(boom\)$", row.reason)


# ------------------------------------------------------------------------------------------- CLI


@pytest.mark.parametrize("args, message", [
    (["--provider", "tpu"], r"unknown provider 'tpu'"),
    (["--batch", "0"], r"positive batch sizes"),
    (["--batch", "1,x"], r"positive batch sizes"),
    (["--runs", "0"], r"--runs"),
    (["--seconds", "0"], r"--seconds"),
    (["--opt-level", "max"], r"--opt-level"),
])
def test_bad_flags_exit_2(tiny: Path, args: list[str], message: str) -> None:
    result = CliRunner().invoke(command, [str(tiny), *args])
    assert result.exit_code == 2, result.output
    assert re.search(message, result.output)


def test_missing_file_and_no_model_exit_2(tmp_path: Path) -> None:
    missing = CliRunner().invoke(command, [str(tmp_path / "nope.onnx")])
    assert missing.exit_code == 2 and "does not exist" in missing.output
    nothing = CliRunner().invoke(command, [])
    assert nothing.exit_code == 2 and "at least one MODEL" in nothing.output


def test_cli_writes_table_json_and_png(tiny: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(command, [str(tiny), "--runs", "4", "--rounds", "2", "--warmup", "1",
                                          "--no-memory", "--provider", "cpu", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert re.search(r"tiny\s+│\s+cpu\s+│\s+1\s+│", result.output)
    assert (out / "bench.json").exists() and (out / "bench.png").exists()


# ------------------------------------------------------------------------------------------ sources


def test_onnx_source_is_timed_through_its_runner_on_cpu_cells_only(tiny: Path, monkeypatch) -> None:
    monkeypatch.setattr(bench_mod, "cuda_unavailable_reason", lambda: "no usable GPU here")
    options = BenchOptions(**{**FAST, "providers": ("cpu", "cuda"), "baseline": "source", "compile": True})
    result = bench([tiny], source=str(tiny), options=options)
    labels = [(r.label, r.provider, r.status) for r in result.results]
    assert labels == [("tiny", "cpu", "ok"), ("source", "cpu", "ok"), ("tiny", "cuda", "skipped")]
    source_row = result.results[1]
    assert source_row.kind == "source" and source_row.speedup.median == pytest.approx(1.0)
    assert any(re.search(r"the ONNX source on onnxruntime \(CPU\), as given", n) for n in source_row.notes)
    assert any(re.search(r"source framework runs on the CPU here", n) for n in result.notes)
    assert any(re.search(r"--compile applies to PyTorch factory sources only", n) for n in result.notes)


@pytest.mark.slow
def test_torch_source_is_timed_natively(tmp_path: Path) -> None:
    factory = tmp_path / "net.py"
    factory.write_text(
        "import torch\n"
        "class Net(torch.nn.Module):\n"
        "    def __init__(self):\n"
        "        super().__init__()\n"
        "        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)\n"
        "        self.example_inputs = (torch.randn(1, 3, 8, 8),)\n"
        "    def forward(self, x):\n"
        "        return self.conv(x).relu()\n"
        "def make():\n"
        "    return Net()\n"
    )
    from onnxmend.exporters import ExportOptions, export

    onnx_path = save_model(export(f"{factory}:make", ExportOptions(dynamic_batch=True)).model, tmp_path / "net.onnx")
    result = bench([onnx_path], source=f"{factory}:make", options=BenchOptions(**{**FAST, "batches": (1, 2)}))
    rows = {(r.label, r.batch): r for r in result.results}
    assert rows[("source", 2)].status == "ok" and rows[("net", 2)].status == "ok"
    assert any("torch eager under inference_mode" in n for n in rows[("source", 1)].notes)


def test_busy_machine_note() -> None:
    from onnxmend.runtime.machine import busy_note

    assert busy_note(4, [1.0, 1.0, 1.0], [2.0, 1.0, 1.0]) is None
    note = busy_note(2, [0.5, 0.5, 0.5], [8.4, 7.0, 4.0])
    assert note and re.search(r"load average up to 8\.4 on 2 usable cores", note)
