"""Running the ``onnxmend`` command line as a user does: a child process, its stdout and stderr as text."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from onnxmend.cli.render import PROGRESS_PREFIX


def onnxmend(*args: str, cwd: Path | None = None, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "onnxmend", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=timeout)


def messages(stderr: str) -> str:
    """stderr without the progress lines a log gets (``·· 10:31:02 +3.2s exporting ...``)."""
    return "".join(line for line in stderr.splitlines(keepends=True) if not line.startswith(PROGRESS_PREFIX))
