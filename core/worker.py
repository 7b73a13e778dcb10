"""Work that may hang, exhaust memory or crash natively, done in a child process with limits.

Running an untrusted graph can end in ways Python cannot catch: onnxruntime dies with SIGFPE on a
zero-size input, shape inference loops on a mutated graph, a Loop with a huge trip count never returns,
a 120 GB input is allocated. A :class:`Worker` is a child Python process that runs named functions
(``"package.module:function"``) on picklable arguments and sends back their results; each call has a wall
time limit, and the process an address-space limit. A hang, a memory bomb or a native crash becomes a
:class:`WorkerFailure` with one sentence, and the next call starts a fresh process. Frameworks that
cannot share a process (TensorFlow, Paddle, MindSpore) each get their own worker the same way.

Requests and results travel as length-prefixed pickles over the child's stdin/stdout; only onnxmend's own
code writes either end. The child's stderr (native libraries' logs) goes to a temporary file, whose last
lines a failure may quote.
"""

from __future__ import annotations

import importlib
import os
import pickle
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from typing import Any, BinaryIO

from onnxmend.core.errors import USER_ERRORS, OnnxmendError

_HEADER = struct.Struct("!Q")
DEFAULT_TIMEOUT_S = 120.0
# The child's address-space limit in bytes, set by the child itself before it reads a request: a
# ``preexec_fn`` would run Python between fork and exec, which can deadlock when another thread of the
# parent holds a lock (the gate takes its references in a thread while the pipeline starts its worker).
MEMORY_LIMIT_ENV = "ONNXMEND_WORKER_MEMORY_BYTES"


class WorkerFailure(OnnxmendError):
    """The child process hung, ran out of memory or crashed; the message says which, doing what."""

    def __init__(self, message: str, kind: str) -> None:
        super().__init__(message)
        self.kind = kind  # "timeout", "crash", "memory"


@dataclass(frozen=True)
class RemoteError:
    """An exception raised inside the child, carried back as data."""

    type_name: str
    message: str
    user_error: bool  # an OnnxmendError: a sentence for the user, raised again as such


def memory_limit_bytes(fraction: float = 0.75) -> int | None:
    """A default address-space limit: ``fraction`` of physical memory (None where it cannot be read)."""
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") * fraction)
    except (ValueError, OSError, AttributeError):
        return None


class Worker:
    """One child process; ``call`` runs ``target(**kwargs)`` in it and returns the result."""

    def __init__(self, memory_bytes: int | None = None, env: dict[str, str | None] | None = None) -> None:
        """``env`` is added to this process's environment for the child; a None value removes that variable."""
        self.memory_bytes = _within_hard_limit(memory_bytes if memory_bytes is not None else memory_limit_bytes())
        self.env = env
        self.process: subprocess.Popen | None = None
        self._stderr: Any = None
        self.generation = 0  # counts child processes started; state kept in an earlier child is gone

    def call(self, target: str, *, actor: str, doing: str, timeout_s: float = DEFAULT_TIMEOUT_S, **kwargs: Any) -> Any:
        """Run ``target`` ("module:function") with ``kwargs`` in the child.

        ``actor`` and ``doing`` make the sentence of a failure: "onnxruntime crashed (SIGFPE) while running
        the input graph".
        """
        process = self._ensure_started()
        try:
            _send(process.stdin, (target, kwargs))
            reply = _receive(process.stdout, timeout_s)
        except TimeoutError:
            self.close()
            raise WorkerFailure(f"{actor} did not finish {doing} within {timeout_s:g} s; it was stopped",
                                "timeout") from None
        except (EOFError, BrokenPipeError, OSError):
            raise self._died(actor, doing) from None
        if isinstance(reply, RemoteError):
            if reply.user_error:
                raise USER_ERRORS.get(reply.type_name, OnnxmendError)(reply.message)
            if reply.type_name == "MemoryError":
                raise WorkerFailure(f"{actor} ran out of memory (limit {self._limit_text()}) while {doing}", "memory")
            raise RemoteFailure(reply)
        return reply

    def alive(self) -> bool:
        """True while the current child process runs (what it holds in memory is still there)."""
        return self.process is not None and self.process.poll() is None

    def close(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()
            self.process = None
        if self._stderr is not None:
            self._stderr.close()
            self._stderr = None

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ensure_started(self) -> subprocess.Popen:
        if self.process is not None and self.process.poll() is None:
            return self.process
        self.close()
        self.generation += 1
        self._stderr = tempfile.TemporaryFile()
        limit = str(self.memory_bytes) if self.memory_bytes else None
        merged = {**os.environ, **(self.env or {}), "PYTHONUNBUFFERED": "1", MEMORY_LIMIT_ENV: limit}
        env = {name: value for name, value in merged.items() if value is not None}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "onnxmend.core.worker"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=self._stderr, env=env,
        )
        return self.process

    def _died(self, actor: str, doing: str) -> WorkerFailure:
        process = self.process
        code = process.wait() if process is not None else None
        self.process = None
        if code is not None and code < 0:
            name = _signal_name(-code)
            if name == "SIGKILL":
                return WorkerFailure(f"{actor} was killed (most likely for memory) while {doing}", "memory")
            return WorkerFailure(f"{actor} crashed ({name}) while {doing}{self._stderr_tail()}", "crash")
        return WorkerFailure(f"{actor} ended its process (exit code {code}) while {doing}{self._stderr_tail()}", "crash")

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0)
        lines = [line for line in self._stderr.read().decode(errors="replace").splitlines() if line.strip()]
        return f"; its last message: {lines[-1][:200]}" if lines else ""

    def _limit_text(self) -> str:
        return f"{self.memory_bytes / 2**30:.1f} GiB" if self.memory_bytes else "none"


class RemoteFailure(Exception):
    """A non-user exception raised in the child: a bug or an unexpected library error, with its type."""

    def __init__(self, error: RemoteError) -> None:
        super().__init__(f"{error.type_name}: {error.message}")
        self.error = error


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _within_hard_limit(limit: int | None) -> int | None:
    """``limit``, lowered to the address-space hard limit this process already has (``ulimit -v``, a batch
    scheduler): a child cannot raise it, and asking to would fail the child's start."""
    import resource

    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    if limit is None or hard == resource.RLIM_INFINITY:
        return limit
    return min(limit, hard)


def _limit_memory() -> None:
    """The address-space limit the parent asked for (:data:`MEMORY_LIMIT_ENV`), on this process."""
    import resource

    limit = os.environ.pop(MEMORY_LIMIT_ENV, "")
    if limit:
        resource.setrlimit(resource.RLIMIT_AS, (int(limit), int(limit)))


def _send(stream: BinaryIO | None, value: object) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    assert stream is not None
    stream.write(_HEADER.pack(len(data)))
    stream.write(data)  # not concatenated to the header: that would copy a big message once more
    stream.flush()


def _receive(stream: BinaryIO | None, timeout_s: float | None = None) -> Any:
    assert stream is not None
    header = _read_exactly(stream, _HEADER.size, timeout_s)
    return pickle.loads(_read_exactly(stream, _HEADER.unpack(header)[0], timeout_s))


def _read_exactly(stream: BinaryIO, size: int, timeout_s: float | None) -> bytes:
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    chunks, remaining, fd = [], size, stream.fileno()
    while remaining:
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                raise TimeoutError
        chunk = os.read(fd, min(remaining, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _serve() -> None:
    """The child's loop: read a request, run it, send the result or the exception back."""
    _limit_memory()
    stdin, stdout = sys.stdin.buffer, _private_stdout()
    while True:
        try:
            target, kwargs = _receive(stdin)
        except EOFError:
            return
        try:
            module_name, function_name = target.split(":")
            result = getattr(importlib.import_module(module_name), function_name)(**kwargs)
        except BaseException as exc:  # everything goes back as data; the parent decides what it means
            result = RemoteError(type(exc).__name__, str(exc).strip().splitlines()[0][:500] if str(exc).strip() else "",
                                 isinstance(exc, OnnxmendError))
        _send(stdout, result)


def _private_stdout() -> BinaryIO:
    """The result stream on a private copy of file descriptor 1, and fd 1 itself pointed at stderr: a
    library's print, and a native library writing to fd 1 (paddle2onnx's C++ log does), cannot corrupt it."""
    sys.stdout.flush()
    results = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return results


if __name__ == "__main__":
    # Run the loop from the module under its own name, so the RemoteError it pickles is importable by
    # the parent as onnxmend.core.worker.RemoteError (not __main__.RemoteError).
    from onnxmend.core.worker import _serve as serve

    serve()
