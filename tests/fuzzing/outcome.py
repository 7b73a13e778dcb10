"""Running the real command line on one file, and what came of it.

Each command runs as ``python -m onnxmend ...`` in a session of its own (so a hang is killed with every
process it started), under an address-space limit (the machine is shared) and an outer timeout larger than
onnxmend's own watchdogs. Its outcome is one of:

- ``clean-result``: exit 0, 1 or 3, with the outputs it promises, valid;
- ``clean-error``: exit 2 and exactly one line on stderr, no traceback;
- ``noisy-error``: exit 2 with more than that one line on stderr;
- ``traceback``: exit 4 (internal error) or a traceback anywhere in its output;
- ``native-crash``: the onnxmend process itself died of a signal;
- ``hang``: the outer timeout ended it (onnxmend's own watchdog did not);
- ``partial-output``: an output exists after a failed run, or a successful run's output is not a valid model
  (or a temporary file was left beside it);
- ``bad-json``: ``--json`` printed something that is not JSON;
- ``unexpected-exit``: any other exit code.

A failure has a *signature* (the exception type and the innermost onnxmend frame; the signal; the kind of
partial output) that groups the inputs failing the same way.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import onnx

ROOT = Path(__file__).resolve().parents[2]
FAILURES = ("traceback", "native-crash", "hang", "partial-output", "noisy-error", "bad-json", "unexpected-exit")
OUTCOMES = ("clean-result", "clean-error") + FAILURES
# Set the address-space limit, then become the onnxmend command (preexec_fn is unsafe with threads).
_LAUNCH = ("import os, resource, sys\nlimit = int(sys.argv[1])\n"
           "if limit: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))\n"
           "os.execv(sys.executable, [sys.executable, '-m', 'onnxmend', *sys.argv[2:]])\n")
_FRAME = re.compile(r'File "([^"]+)", line (\d+), in (\S+)')


@dataclass
class CommandRun:
    command: str
    returncode: int | None  # None: stopped by the outer timeout
    seconds: float
    outcome: str = ""
    signature: str = ""
    message: str = ""  # the error sentence, or what is wrong
    watchdog: str = ""  # what onnxmend's own limits stopped ("timeout", "memory", "crash"), when they did

    def to_json(self) -> dict[str, object]:
        return {"command": self.command, "returncode": self.returncode, "seconds": round(self.seconds, 2),
                "outcome": self.outcome, "signature": self.signature, "message": self.message,
                "watchdog": self.watchdog}


def arguments(command: str, model: Path, work: Path, gate_timeout_s: float | None = None) -> list[str]:
    if command == "inspect":
        return ["inspect", str(model), "--json"]
    if command == "fix":
        timeout = ["--timeout", f"{gate_timeout_s:g}"] if gate_timeout_s else []
        return ["fix", str(model), "-o", str(work / "fixed.onnx"), *timeout]
    if command == "convert":
        return ["convert", str(model), "-o", str(work / "converted")]
    raise ValueError(command)


def run_command(command: str, model: Path, work: Path, timeout_s: float, memory_bytes: int,
                gate_timeout_s: float | None = None) -> CommandRun:
    """Run ``onnxmend COMMAND`` on ``model`` (outputs in ``work``) and classify what happened; ``fix`` gets
    ``--timeout gate_timeout_s`` when it is given."""
    logs = work / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "ONNXMEND_LOG_DIR": str(logs), "PYTHONWARNINGS": os.environ.get("PYTHONWARNINGS", "")}
    argv = [sys.executable, "-c", _LAUNCH, str(memory_bytes), *arguments(command, model, work, gate_timeout_s)]
    start = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=work, env=env,
                               start_new_session=True)
    try:
        out, err = process.communicate(timeout=timeout_s)
        code: int | None = process.returncode
    except subprocess.TimeoutExpired:
        code = None
        _kill_session(process)
        out, err = process.communicate()
    finally:
        _kill_session(process)  # whatever the command left running (a worker child) goes with it
    run = CommandRun(command, code, time.monotonic() - start)
    classify(run, out.decode(errors="replace"), err.decode(errors="replace"), model, work)
    return run


def _kill_session(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


# How a worker failure reads (onnxmend.core.worker): the run was ended by onnxmend's own watchdog.
WATCHDOG = {"timeout": "did not finish", "memory": "ran out of memory", "killed": "was killed (most likely for memory)",
            "crash": "crashed ("}


def classify(run: CommandRun, stdout: str, stderr: str, model: Path, work: Path) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    run.message = lines[-1][:300] if lines else ""
    said = " ".join((stdout + " " + stderr).split())  # rich wraps long lines
    run.watchdog = next((kind for kind, phrase in WATCHDOG.items() if phrase in said), "")
    if run.returncode is None:
        run.outcome, run.signature = "hang", f"{run.command}: hang (outer timeout)"
    elif run.returncode < 0:
        name = _signal_name(-run.returncode)
        run.outcome, run.signature = "native-crash", f"{run.command}: onnxmend died of {name}"
    elif run.returncode == 4 or "Traceback (most recent call last)" in stderr + stdout:
        run.outcome, run.signature = "traceback", f"{run.command}: {_traceback_signature(stderr, work)}"
    else:
        partial = _partial(run, model, work)
        if partial:
            run.outcome, run.signature, run.message = "partial-output", f"{run.command}: {partial}", partial
        elif run.command == "inspect" and run.returncode == 0 and not _is_json(stdout):
            run.outcome, run.signature = "bad-json", "inspect: --json stdout is not JSON"
        elif run.returncode == 2:
            clean = len(lines) == 1
            run.outcome = "clean-error" if clean else "noisy-error"
            run.signature = "" if clean else f"{run.command}: {len(lines)} lines on stderr: {normalise(lines[0])}"
        elif run.returncode in (0, 1, 3):
            run.outcome = "clean-result"
        else:
            run.outcome, run.signature = "unexpected-exit", f"{run.command}: exit code {run.returncode}"


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _traceback_signature(stderr: str, work: Path) -> str:
    """``ExcType at module.py:function`` of the innermost frame in onnxmend's own code."""
    text = stderr
    found = re.search(r"details in (\S+?\.log)\)", stderr)
    if found and Path(found.group(1)).is_file():
        text = Path(found.group(1)).read_text(errors="replace")
    frames = _FRAME.findall(text)
    ours = [f for f in frames if str(ROOT) in f[0] and ".venv" not in f[0]] or frames
    where = f"{Path(ours[-1][0]).relative_to(ROOT) if str(ROOT) in ours[-1][0] else Path(ours[-1][0]).name}:{ours[-1][2]}" \
        if ours else "?"
    last = [line for line in text.splitlines() if line.strip() and not line.startswith(" ")]
    kind = next((m.group(1) for line in reversed(last) if (m := re.match(r"^([A-Za-z_][\w.]*(?:Error|Exception|Exit|"
                                                                        r"Interrupt|Failure|Warning)):?", line))), "")
    if not kind:
        internal = re.search(r"internal error: (\w+)", stderr)
        kind = internal.group(1) if internal else "?"
    return f"{kind} at {where}"


def _partial(run: CommandRun, model: Path, work: Path) -> str:
    """What is wrong with the outputs the command left, or an empty string."""
    leftovers = sorted(p.name for p in work.rglob(".*.tmp"))
    if leftovers:
        return f"temporary file left behind ({leftovers[0]})"
    ok = run.returncode in (0, 1, 3)
    if run.command == "fix":
        return _check_output(work / "fixed.onnx", model, must_exist=ok)
    if run.command == "convert":
        folder = work / "converted"
        if not ok:
            written = [n for n in ("raw.onnx", "model.onnx") if (folder / n).exists()]
            return f"{written[0]} written by a failed run" if written else ""
        if not (folder / "report.json").is_file():
            return "no report.json after a successful run"
        return _check_output(folder / "model.onnx", model, must_exist=True)
    return ""


def _check_output(path: Path, model: Path, must_exist: bool) -> str:
    if not must_exist:
        return "output written by a failed run" if path.exists() else ""
    if not path.is_file():
        return "no output after a successful run"
    try:
        written = onnx.load(str(path))
    except Exception as exc:  # any parse failure: the output is not a model
        return f"the output is not a loadable model ({type(exc).__name__})"
    if _checks(model) and not _checks(written):
        return "the output fails the ONNX checker although the input passes it"
    return ""


def _checks(model: Path | onnx.ModelProto) -> bool:
    try:
        onnx.checker.check_model(model if isinstance(model, onnx.ModelProto) else str(model))
        return True
    except Exception:  # the checker raises ValidationError and others
        return False


def _is_json(text: str) -> bool:
    """Strict JSON: Python's ``NaN``/``Infinity`` extensions are not JSON (jq and browsers refuse them)."""
    try:
        json.loads(text, parse_constant=_refuse_constant)
        return True
    except ValueError:
        return False


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def normalise(message: str, limit: int = 90) -> str:
    """An error sentence with its specifics taken out, so sentences of one kind group together."""
    text = re.sub(r"^error:\s*", "", message.strip())
    text = re.sub(r"(/[^\s:;,()']+)+", "PATH", text)
    text = re.sub(r"'[^']*'|\"[^\"]*\"", "'…'", text)
    text = re.sub(r"\b\d+(x\d+)+\b", "NxN", text)
    text = re.sub(r"(?<![\w-])(0x[0-9a-f]+|-?\d+(\.\d+)?(e[-+]?\d+)?)", "N", text)
    return text[:limit]
