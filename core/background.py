"""A call run in a thread of its own, its result (or what it raised) collected later from a Future.

For calls that mostly wait for a worker process (shape inference, a gate check), so that this process goes
on with its own work meanwhile: the worker computes on another core, the thread only waits for its answer.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any, Callable, TypeVar

T = TypeVar("T")


def in_thread(function: Callable[..., T], *args: Any, name: str) -> Future[T]:
    """Start ``function(*args)`` in a daemon thread named ``name``; ``result()`` raises what it raised."""
    future: Future[T] = Future()

    def run() -> None:
        try:
            future.set_result(function(*args))
        except BaseException as exc:  # noqa: BLE001 - raised again by future.result() in the caller's thread
            future.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future
