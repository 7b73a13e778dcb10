"""Exit codes, the same for every command, and what happens to an exception nobody expected.

0 pass · 1 mismatch or gate failure · 2 bad input (one sentence) · 3 rewritten but not verified
numerically (with the reason) · 4 internal error (one line, and the log file that holds the traceback).
"""

from __future__ import annotations

import datetime
import os
import tempfile
import traceback
from pathlib import Path
from typing import IO

import click

PASS, MISMATCH, BAD_INPUT, NOT_VERIFIED, INTERNAL = 0, 1, 2, 3, 4


class UserError(click.ClickException):
    """Bad input as click sees it: the same "error: <sentence>" and exit code 2 as ``main`` gives an
    OnnxmendError, also when a command runs on its own (under click's test runner)."""

    exit_code = BAD_INPUT

    def show(self, file: IO[str] | None = None) -> None:
        click.echo(f"error: {self.format_message()}", err=True)


def log_dir() -> Path:
    """Where internal-error logs go: ``$ONNXMEND_LOG_DIR``, else ``~/.cache/onnxmend/logs``, else the temp dir."""
    configured = os.environ.get("ONNXMEND_LOG_DIR")
    for candidate in ([Path(configured)] if configured else []) + [Path.home() / ".cache" / "onnxmend" / "logs"]:
        try:
            candidate.mkdir(parents=True, exist_ok=True)
            return candidate
        except OSError:
            continue
    return Path(tempfile.gettempdir())


def write_crash_log(exc: BaseException, argv: list[str]) -> Path:
    """The traceback of ``exc`` and the command line, in a new file; returns its path."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    fd, name = tempfile.mkstemp(prefix=f"onnxmend-{stamp}-", suffix=".log", dir=log_dir())
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write("command: " + " ".join(argv) + "\n\n")
        handle.write("".join(traceback.format_exception(exc)))
    return Path(name)
