"""``sweep``: many models into one table, each in its own worker process; a failing model in the middle
of a sweep gets its row and the rest still run; results are on disk after every model; the serial and
Ray engines give the same table."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from types import SimpleNamespace

import pytest

from onnxmend.core.errors import MissingDependencyError, OnnxmendError
from onnxmend.core.table import to_markdown
from onnxmend.flows.sweep import (
    SourceLine,
    SweepOptions,
    local_target,
    parse_line,
    plan_jobs,
    read_sources,
    reproducible_env,
    sweep,
    zoo_sources,
)
from onnxmend.flows.sweep_engine import check_reachable, start_engine
from onnxmend.flows.sweep_job import row_reason
from onnxmend.flows.sweep_result import SweepRow, sweep_table

NET = textwrap.dedent('''
    import os
    import signal

    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
            self.example_inputs = (torch.randn(1, 3, 8, 8),)
        def forward(self, x):
            return torch.tanh(self.conv(x))

    def make():
        return Net()

    def boom():
        raise RuntimeError("the factory refuses")

    def crash():
        os.kill(os.getpid(), signal.SIGSEGV)
''')
# layernorm-last-keras: its raw export depends on the hash seed unless the sweep pins it
SMALL_ZOO = "depthwise-torch,gap-keepdims-torch,layernorm-last-keras"


@pytest.fixture(scope="module")
def net(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("sweep-net")
    (folder / "net.py").write_text(NET)
    return folder / "net.py"


def test_a_list_file_gives_sources_inputs_and_a_problem_per_bad_line(tmp_path: Path) -> None:
    listing = tmp_path / "models.txt"
    listing.write_text("# comment\n\nzoo:gap-keras\nnet.py:make --input x:1x3x8x8  # why\n"
                       "net.py:make --bogus\nnet.py:make --input x:oops\n'unclosed\n")
    lines = read_sources(listing)
    assert [line.source for line in lines] == ["zoo:gap-keras", "net.py:make", "net.py:make", "net.py:make", "'unclosed"]
    assert lines[0] == SourceLine("zoo:gap-keras") and lines[1] == SourceLine("net.py:make", ("x:1x3x8x8",))
    assert lines[2].problem == "models.txt:5: unexpected '--bogus'; a line is SOURCE [--input NAME:SHAPE ...]"
    assert lines[3].problem.startswith("models.txt:6: Cannot parse input 'x:oops'")
    assert lines[4].problem == "models.txt:7: No closing quotation"
    assert parse_line("a.onnx --input=x:1x3", "l:1") == SourceLine("a.onnx", ("x:1x3",))
    with pytest.raises(OnnxmendError, match=r"is not a file; give a list of sources"):
        read_sources(tmp_path / "missing.txt")


def test_zoo_filters_are_names_substrings_or_globs() -> None:
    assert [s.source for s in zoo_sources("tf-same-*-torch*")] == ["zoo:tf-same-conv-torch", "zoo:tf-same-conv-torch-naive"]
    assert [s.source for s in zoo_sources("gap-keras,depthwise-torch")] == ["zoo:depthwise-torch", "zoo:gap-keras"]
    assert [s.source for s in zoo_sources("tf-same-conv-torch")] == ["zoo:tf-same-conv-torch"]  # not -naive
    assert len(zoo_sources("")) == len(zoo_sources("*")) > 20
    with pytest.raises(OnnxmendError, match=r"^No zoo entry matches 'nothing-like-this'"):
        zoo_sources("nothing-like-this")


def test_jobs_are_models_times_presets_times_providers_in_table_order(tmp_path: Path, net: Path) -> None:
    options = SweepOptions(presets=("fix", "portable"), providers=("cpu", "auto"))
    groups = plan_jobs([SourceLine("zoo:gap-keras"), SourceLine(f"{net}:make")], tmp_path, options)
    assert [[(j.index, j.preset, j.provider) for j in jobs] for jobs in groups] == [
        [(0, "fix", "cpu"), (1, "fix", "auto"), (2, "portable", "cpu"), (3, "portable", "auto")],
        [(4, "fix", "cpu"), (5, "fix", "auto"), (6, "portable", "cpu"), (7, "portable", "auto")]]
    assert groups[1][2].out_dir == str(tmp_path / "models" / "001-make" / "portable-cpu")
    assert local_target("zoo:gap-keras") == "zoo:gap-keras"
    relative = net.relative_to(Path.cwd()) if net.is_relative_to(Path.cwd()) else net
    assert local_target(f"{relative}:make") == f"{net.resolve()}:make"


@pytest.mark.parametrize("options, message", [
    (SweepOptions(presets=("fast",)), r"^Unknown preset 'fast'; choose from fix, portable, none\.$"),
    (SweepOptions(providers=("tpu",)), r"^Unknown provider 'tpu'; use auto, cpu, cuda\.$"),
    (SweepOptions(address="auto"), r"^--address names a Ray cluster; add --engine ray\.$"),
])
def test_bad_options_are_one_sentence_before_anything_runs(tmp_path: Path, options, message) -> None:
    with pytest.raises(OnnxmendError, match=message):
        sweep(["zoo:gap-keras"], tmp_path, options)
    assert not (tmp_path / "sweep.jsonl").exists()


def test_ray_missing_is_the_missing_extra_sentence(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(MissingDependencyError, match=r"^This needs Ray, which is not installed; install onnxmend's `ray` extra"):
        start_engine([], SweepOptions(engine="ray"))


def test_a_ray_address_nothing_answers_at_is_one_sentence() -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(OnnxmendError, match=rf"^Nothing answers at the Ray address ray://127\.0\.0\.1:{port} \("):
        check_reachable(f"ray://127.0.0.1:{port}")
    check_reachable("auto")  # left to Ray


def _fake(verdict: str, raw: str, rejected: tuple[str, ...] = (), failure: str = "") -> SimpleNamespace:
    failures = [] if verdict == "pass" or failure else ["logits vs source (torch): max abs 0.2 > tolerance"]
    comparison = lambda v, f, worst: SimpleNamespace(verdict=v, failures=f, worst_max_abs_scaled=worst)  # noqa: E731
    return SimpleNamespace(
        validation=SimpleNamespace(verdict=verdict, comparison=comparison(verdict, failures, 0.2), unverified="",
                                   failure=failure),
        raw_validation=SimpleNamespace(verdict=raw, comparison=comparison(raw, [], 3e-7)),
        pipeline=SimpleNamespace(records=[SimpleNamespace(name=n, status="rejected") for n in rejected]))


def test_the_reason_says_which_outputs_fail_whether_the_raw_export_does_and_what_the_gate_rolled_back() -> None:
    assert row_reason(_fake("pass", "pass")) == ""
    assert row_reason(_fake("mismatch", "pass"), "bench: no session") == (
        "logits vs source (torch): max abs 0.2 > tolerance; the raw export passes (max abs/scale 3e-07); bench: no session")
    assert row_reason(_fake("mismatch", "mismatch", ("fold-pad", "fold-pad"))) == (
        "logits vs source (torch): max abs 0.2 > tolerance; the raw export fails too; the gate rolled back fold-pad")
    assert row_reason(_fake("mismatch", "pass", failure="onnxruntime cannot run the ONNX model at 1x3x8x8 (boom)")) == (
        "onnxruntime cannot run the ONNX model at 1x3x8x8 (boom); the raw export passes (max abs/scale 3e-07)")


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_failing_model_in_the_middle_gets_its_row_and_the_rest_still_run(tmp_path: Path, net: Path) -> None:
    listing = tmp_path / "models.txt"
    listing.write_text(f"zoo:depthwise-torch\nzoo:no-such-model\n{net}:boom\n{net}:crash\n{net}:make --bogus\n"
                       f"{net}:make --input x:1x3x8x8\n")
    seen: list[list[int]] = []

    def on_rows(rows: list[SweepRow], total: int) -> None:  # the files hold every finished row already
        seen.append([row["index"] for row in _rows(tmp_path / "out" / "sweep.jsonl")])
        assert f"running: {len(seen[-1])} of {total} rows so far" in (tmp_path / "out" / "sweep.md").read_text() \
            or len(seen[-1]) == total

    result = sweep(read_sources(listing), tmp_path / "out", SweepOptions(bench_seconds=0.05, timeout_s=120), on_rows)
    assert seen == [[0], [0, 1], [0, 1, 2], [0, 1, 2, 3], [0, 1, 2, 3, 4], [0, 1, 2, 3, 4, 5]]
    got = [(r.verdict, r.exit_code) for r in result.rows]
    assert got == [("pass", 0), ("error", 2), ("error", 2), ("error", 4), ("error", 2), ("pass", 0)]
    reasons = [r.reason for r in result.rows]
    assert reasons[1].startswith("There is no zoo model 'no-such-model'")
    assert reasons[2].endswith("raised RuntimeError: the factory refuses")
    assert reasons[3].startswith(f"the model's worker process crashed (SIGSEGV) while converting {net}:crash with "
                                 "preset fix on provider auto")
    assert reasons[4] == "models.txt:5: unexpected '--bogus'; a line is SOURCE [--input NAME:SHAPE ...]"
    last = result.rows[5]
    assert (last.ran_on, last.nodes_raw, last.ops_fixed, last.max_abs_scaled < 1e-5) == ("cpu", 2, {"Conv": 1, "Tanh": 1}, True)
    assert last.latency_ms is not None and last.latency_ms > 0
    assert (Path(last.out_dir) / "model.onnx").is_file() and result.exit_code == 1
    assert _rows(tmp_path / "out" / "sweep.jsonl") == [r.to_json() for r in result.rows]
    markdown = (tmp_path / "out" / "sweep.md").read_text()
    assert "finished." in markdown and "2 of 6 rows passed." in markdown and "| **error (exit 4)** |" in markdown


def test_the_cli_renders_rows_and_exits_one_when_a_row_failed(tmp_path: Path) -> None:
    listing = tmp_path / "models.txt"
    listing.write_text("zoo:gap-keras --shape 1\n")  # a bad line: no worker needs to start
    run = subprocess.run([sys.executable, "-m", "onnxmend", "sweep", str(listing), "-o", str(tmp_path / "o"), "--json"],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1, run.stderr
    data = json.loads(run.stdout)
    assert (data["passed"], data["total"], data["rows"][0]["exit_code"]) == (0, 1, 2)
    run = subprocess.run([sys.executable, "-m", "onnxmend", "sweep"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 2 and "Give a LIST file of sources, --zoo [FILTER], or both." in run.stderr


def test_every_worker_gets_a_fixed_hash_seed_and_this_process_s_omp_threads(monkeypatch) -> None:
    monkeypatch.delenv("PYTHONHASHSEED", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert dict(reproducible_env()) == {"PYTHONHASHSEED": "0", "OMP_NUM_THREADS": "3"}
    monkeypatch.delenv("OMP_NUM_THREADS")
    monkeypatch.setenv("PYTHONHASHSEED", "7")
    assert dict(reproducible_env()) == {"PYTHONHASHSEED": "7", "OMP_NUM_THREADS": None}  # None: unset in the worker


@pytest.mark.slow  # Ray's start-up (2-6 s here) plus three small models twice: about 50 s on this machine
def test_serial_and_ray_sweeps_give_the_same_table(tmp_path: Path) -> None:
    pytest.importorskip("ray", reason="Ray is the optional `ray` extra")
    sources = zoo_sources(SMALL_ZOO)
    serial = sweep(sources, tmp_path / "serial", SweepOptions(bench_seconds=0.05))
    ray = sweep(sources, tmp_path / "ray", SweepOptions(engine="ray", bench_seconds=0.05))
    assert serial.exit_code == ray.exit_code == 0 and len(serial.rows) == 3
    assert to_markdown(sweep_table(serial.rows, timings=False)) == to_markdown(sweep_table(ray.rows, timings=False))
    assert all(r.latency_ms is not None for r in serial.rows + ray.rows)
    assert ray.notes[0].startswith("a local Ray instance started in ") and ray.engine_seconds > 0
