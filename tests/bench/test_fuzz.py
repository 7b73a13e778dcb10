"""Mutation fuzzing of the command line, reduced for CI (the full run is ``bench/fuzz.py --count 2000``):
every mutated input ends in a result or one sentence — no traceback, no native crash, no hang, no partial
output, no modified input. Also: the harness builds the same inputs from the same seed, and its
classifier tells each way a run can fail from a clean one."""

from __future__ import annotations

import os
from pathlib import Path

import onnx
import pytest

from tests.fuzzing import harness
from tests.fuzzing.outcome import CommandRun, classify, normalise
from tests.fuzzing.seeds import ONNX_ZOO, crafted_seeds, zoo_seeds
from tests.fuzzing.targeted import CLASSES, mutant

REDUCED_COUNT = 100


@pytest.fixture(scope="module")
def seeds(tmp_path_factory: pytest.TempPathFactory) -> list:
    return crafted_seeds() + zoo_seeds(ONNX_ZOO, tmp_path_factory.mktemp("seeds"))


@pytest.mark.slow
def test_a_reduced_fuzz_run_gives_no_traceback_crash_hang_partial_output_or_modified_input(seeds, tmp_path: Path) -> None:
    # fix --timeout 10: a Loop that never ends is stopped by onnxmend after 10 s instead of its default 120 s.
    settings = harness.Settings(REDUCED_COUNT, seed=12, jobs=min(2, os.cpu_count() or 1), timeout_s=300,
                                memory_bytes=4 << 30, gate_timeout_s=10)
    summary = harness.run(settings, seeds, tmp_path)
    failures = summary.failures()
    assert summary.tried == REDUCED_COUNT
    assert {k: v for k, v in failures.items() if v} == {}, harness.table(summary)
    counts = summary.counts()
    # The run exercised both ways out: results and one-sentence errors, for both commands.
    assert all(counts[c]["clean-result"] > 0 and counts[c]["clean-error"] > 0 for c in ("inspect", "fix"))


def test_the_same_run_seed_builds_the_same_inputs(seeds) -> None:
    first = [mutant(i, 3, seeds).data for i in range(2 * len(CLASSES))]
    again = [mutant(i, 3, seeds).data for i in range(2 * len(CLASSES))]
    other = [mutant(i, 4, seeds).data for i in range(2 * len(CLASSES))]
    assert first == again
    assert sum(a != b for a, b in zip(first, other)) > len(CLASSES)


def test_every_mutation_class_changes_its_seed(seeds) -> None:
    originals = {s.data for s in seeds}
    for offset, kind in enumerate(CLASSES):
        changed = [mutant(offset + k * len(CLASSES), 0, seeds).data not in originals for k in range(6)]
        assert sum(changed) >= 4, kind


def _classified(command: str, code: int | None, stdout: str, stderr: str, work: Path, model: Path) -> CommandRun:
    run = CommandRun(command, code, 1.0)
    classify(run, stdout, stderr, model, work)
    return run


@pytest.mark.parametrize("command, code, stdout, stderr, output, outcome", [
    ("inspect", 0, "{}", "", None, "clean-result"),
    ("inspect", 0, "not json {", "", None, "bad-json"),
    ("inspect", 0, '{"epsilon": NaN}', "", None, "bad-json"),
    ("inspect", 2, "", "error: x.onnx is not a readable ONNX model (DecodeError).\n", None, "clean-error"),
    ("inspect", 2, "", "WARNING something\nerror: the sentence\n", None, "noisy-error"),
    ("inspect", 4, "", "internal error: KeyError: 'x' (details in /nowhere.log)\n", None, "traceback"),
    ("inspect", 0, "{}", 'Traceback (most recent call last):\n  File "a.py", line 1, in f\nValueError: v\n', None, "traceback"),
    ("fix", -8, "", "", None, "native-crash"),
    ("fix", None, "", "", None, "hang"),
    ("fix", 0, "", "", "model", "clean-result"),
    ("fix", 0, "", "", None, "partial-output"),
    ("fix", 0, "", "", "garbage", "partial-output"),
    ("fix", 2, "", "error: bad\n", "model", "partial-output"),
    ("fix", 7, "", "", None, "unexpected-exit"),
])
def test_the_classifier_tells_each_outcome(tmp_path: Path, command, code, stdout, stderr, output, outcome) -> None:
    model = tmp_path / "input.onnx"
    onnx.save(crafted_seeds()[0].model, model)
    if output == "model":
        onnx.save(crafted_seeds()[0].model, tmp_path / "fixed.onnx")
    elif output == "garbage":
        (tmp_path / "fixed.onnx").write_bytes(b"\x00\xff not a model")
    run = _classified(command, code, stdout, stderr, tmp_path, model)
    assert run.outcome == outcome
    assert bool(run.signature) == (outcome not in ("clean-result", "clean-error"))


def test_a_left_temporary_file_is_a_partial_output(tmp_path: Path) -> None:
    model = tmp_path / "input.onnx"
    onnx.save(crafted_seeds()[0].model, model)
    (tmp_path / ".fixed.onnx.abc.tmp").write_bytes(b"")
    assert _classified("fix", 2, "", "error: bad\n", tmp_path, model).outcome == "partial-output"


def test_error_kinds_group_without_their_specifics() -> None:
    assert normalise("error: /tmp/a/b.onnx is not a readable ONNX model (DecodeError).") == \
        normalise("error: /x/y.onnx is not a readable ONNX model (DecodeError).")
    assert normalise("error: Input x of shape 1x3 would take 12 GB") == normalise("error: Input x of shape 9x5 would take 7 GB")
