"""One convention across commands: every option explained, -o/--out and --provider spelled one way,
-q/-v/--json on every command that works, contradictions refused, names never cut, progress in logs."""

from __future__ import annotations

import io
import re
import time
from pathlib import Path

import click
import onnx
import pytest
from onnx import TensorProto, helper
from rich.console import Console

import onnxmend.cli.render as render_module
from onnxmend.cli import cli
from onnxmend.cli.render import PROGRESS_PREFIX, render
from onnxmend.core.table import table
from onnxmend.models import ZOO
from onnxmend.passes.infra.catalogue import all_passes
from tests.builders import conv_relu_model, make_model
from tests.builders.cli import messages, onnxmend

WORKING = ("convert", "fix", "validate", "quantize", "bench", "sweep")


def _commands() -> dict[str, click.Command]:
    ctx = click.Context(cli)
    return {name: cli.get_command(ctx, name) for name in cli.list_commands(ctx)}  # type: ignore[misc]


def test_every_option_has_help_text() -> None:
    missing = [f"{name} {max(p.opts, key=len)}" for name, command in _commands().items()
               for p in command.params if isinstance(p, click.Option) and not p.hidden and not (p.help or "").strip()]
    assert not missing, missing


def test_one_spelling_for_outputs_providers_and_verbosity() -> None:
    commands = _commands()
    for name in WORKING:
        flags = {opt for p in commands[name].params for opt in p.opts}
        assert {"--json", "-q", "--quiet", "-v", "--verbose"} <= flags, name
        assert "--provider" in flags or name == "fix", name
        assert not flags & {"--output", "--providers"}, name
    for name in ("convert", "fix", "quantize", "bench"):
        assert {"-o", "--out"} <= {opt for p in commands[name].params for opt in p.opts}, name


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("conventions")
    onnx.save(conv_relu_model(), path / "model.onnx")
    return path


@pytest.mark.parametrize("args, said", [
    (["fix", "model.onnx", "-o", "f.onnx", "--passes", "fold-pad", "--preset", "portable"],
     r"--passes and --preset cannot be used together"),
    (["fix", "model.onnx", "-o", "f.onnx", "--passes", "fold-pad", "--layout", "nchw"],
     r"--layout nchw is carried out by the io-layout pass, which --passes leaves out"),
    (["fix", "model.onnx", "-o", "f.onnx", "--no-verify", "--seed", "3"],
     r"--input, --seed and --timeout set up the gate, and --no-verify turns the gate off"),
    (["fix", "model.onnx", "-o", "f.onnx", "--no-verify", "--timeout", "30"],
     r"--input, --seed and --timeout set up the gate, and --no-verify turns the gate off"),
    (["fix", "model.onnx", "-o", "f.onnx", "-q", "-v"], r"--quiet and --verbose cannot be used together"),
])
def test_contradicting_options_are_a_usage_error(work: Path, args: list[str], said: str) -> None:
    result = onnxmend(*args, cwd=work)
    assert result.returncode == 2, result.stderr
    assert re.search(said, result.stderr), result.stderr
    assert not (work / "f.onnx").exists()


def test_passes_with_io_layout_and_a_pinned_layout_run(work: Path) -> None:
    result = onnxmend("fix", "model.onnx", "-o", "pinned.onnx", "--passes", "io-layout,fold-pad", "--layout", "nchw",
                      cwd=work)
    assert result.returncode == 0, result.stderr


def test_quiet_prints_the_verdict_only(work: Path) -> None:
    loud = onnxmend("fix", "model.onnx", "-o", "loud.onnx", cwd=work)
    quiet = onnxmend("fix", "model.onnx", "-o", "quiet.onnx", "-q", cwd=work)
    assert loud.returncode == quiet.returncode == 0, quiet.stderr
    assert "passes (" in loud.stdout and "passes (" not in quiet.stdout
    assert quiet.stdout.strip() == "wrote quiet.onnx" and not quiet.stderr


def test_piped_listings_print_every_name_whole() -> None:
    zoo = onnxmend("zoo").stdout
    passes = onnxmend("passes").stdout
    assert "…" not in zoo + passes
    for name in ZOO:
        assert re.search(rf"\bzoo:{re.escape(name)}\b", zoo), name
    for name in all_passes():
        assert re.search(rf"\b{re.escape(name)}\b", passes), name


def test_on_a_narrow_terminal_the_naming_column_is_kept_whole() -> None:
    shown = table("plan", ["node", "op", "reason"])
    long_name = "encoder/layer_11/attention/self/query/MatMul_quantizable_with_a_long_name"
    shown.add(long_name, "MatMul", "a reason long enough that it must wrap on an eighty column terminal " * 2)
    screen = io.StringIO()
    Console(file=screen, width=80, force_terminal=True, color_system=None).print(render(shown))
    assert long_name in screen.getvalue()
    assert "…" not in screen.getvalue()


def test_quantize_plan_prints_whole_node_names(tmp_path: Path) -> None:
    name = "encoder/layer_11/attention/self/query/MatMul_with_a_name_longer_than_a_column"
    weight = helper.make_tensor("w", TensorProto.FLOAT, [64, 64], [0.01 * (i % 97 - 48) for i in range(64 * 64)])
    model = make_model([helper.make_node("MatMul", ["x", "w"], ["y"], name=name)],
                       {"x": ([2, 64], TensorProto.FLOAT)}, ["y"], [weight])
    onnx.save(model, tmp_path / "m.onnx")
    result = onnxmend("quantize", "m.onnx", "-o", "q", "--runs", "0", "--allow-no-gain", cwd=tmp_path)
    assert name in result.stdout, result.stdout


def test_progress_in_a_log_names_each_step_that_takes_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    log = io.StringIO()
    monkeypatch.setattr(render_module, "err_console", Console(file=log, width=200))
    monkeypatch.setattr(render_module, "LOG_AFTER_S", 0.05)
    with render_module.progress() as step:
        step("exporting zoo:model")
        time.sleep(0.3)  # a slow step is named once it has run LOG_AFTER_S
        step("round 1: fold-pad")  # quick steps are not
        step("round 1: fuse-gelu")
    time.sleep(0.2)
    lines = log.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert re.fullmatch(rf"{PROGRESS_PREFIX} \d\d:\d\d:\d\d \+0\.0s exporting zoo:model", lines[0]), lines


def test_a_command_in_a_log_prints_progress_lines_and_nothing_else_on_stderr(work: Path) -> None:
    result = onnxmend("validate", "model.onnx", "--source", "model.onnx", cwd=work)
    assert result.returncode == 0, result.stderr
    assert not messages(result.stderr).strip(), result.stderr
    quiet = onnxmend("validate", "model.onnx", "--source", "model.onnx", "-q", cwd=work)
    assert quiet.returncode == 0 and not quiet.stderr and quiet.stdout.strip() == "PASS"
