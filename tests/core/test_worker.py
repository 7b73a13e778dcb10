"""The worker process: results come back, and a hang, a memory bomb, a native crash or an exception in the
child becomes one sentence (or a typed failure) in the parent, which keeps working."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from onnxmend.core.errors import OnnxmendError
from onnxmend.core.worker import MEMORY_LIMIT_ENV, RemoteFailure, Worker, WorkerFailure


def add(a: int, b: int) -> int:
    return a + b


def hang() -> None:
    time.sleep(60)


def crash() -> None:
    os.kill(os.getpid(), signal.SIGFPE)


def bomb() -> bytearray:
    return bytearray(64 * 2**30)


def raises() -> None:
    raise ValueError("first line\nsecond line")


def noisy() -> int:
    print("print goes to stderr")
    os.write(1, b"so does a native library's write to fd 1")
    return 7


def user_error() -> None:
    raise OnnxmendError("The input is bad; give another.")


@pytest.fixture(scope="module")
def worker():
    tests_root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    with Worker(memory_bytes=2 * 2**30, env={"PYTHONPATH": os.pathsep.join([tests_root, *sys.path])}) as w:
        yield w


TARGET = "tests.core.test_worker"


def test_a_result_comes_back(worker: Worker) -> None:
    assert worker.call(f"{TARGET}:add", actor="python", doing="adding", a=2, b=3) == 5


def environment(name: str) -> str | None:
    return os.environ.get(name)


def test_env_adds_variables_and_none_removes_one(monkeypatch) -> None:
    monkeypatch.setenv("ONNXMEND_TEST_GONE", "1")
    tests_root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    env = {"PYTHONPATH": os.pathsep.join([tests_root, *sys.path]), "ONNXMEND_TEST_GONE": None, "ONNXMEND_TEST_SET": "2"}
    with Worker(memory_bytes=2 * 2**30, env=env) as w:
        assert w.call(f"{TARGET}:environment", actor="python", doing="reading", name="ONNXMEND_TEST_GONE") is None
        assert w.call(f"{TARGET}:environment", actor="python", doing="reading", name="ONNXMEND_TEST_SET") == "2"


def address_limit() -> int:
    import resource

    return resource.getrlimit(resource.RLIMIT_AS)[0]


def test_the_child_limits_its_own_address_space_and_does_not_pass_the_variable_on(worker: Worker) -> None:
    # The child sets the limit itself (no preexec_fn, which is unsafe while another thread holds a lock).
    assert worker.call(f"{TARGET}:address_limit", actor="python", doing="reading") == 2 * 2**30
    assert worker.call(f"{TARGET}:environment", actor="python", doing="reading", name=MEMORY_LIMIT_ENV) is None


def test_workers_start_from_two_threads_at_once() -> None:
    tests_root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    env = {"PYTHONPATH": os.pathsep.join([tests_root, *sys.path])}
    workers = [Worker(memory_bytes=2 * 2**30, env=env) for _ in range(4)]
    try:
        with ThreadPoolExecutor(4) as pool:
            sums = list(pool.map(lambda w: w.call(f"{TARGET}:add", actor="python", doing="adding", a=1, b=2), workers))
        assert sums == [3, 3, 3, 3]
    finally:
        for w in workers:
            w.close()


def test_writes_to_stdout_do_not_corrupt_the_result_stream(worker: Worker) -> None:
    assert worker.call(f"{TARGET}:noisy", actor="python", doing="printing") == 7
    assert worker.call(f"{TARGET}:add", actor="python", doing="adding", a=1, b=1) == 2


@pytest.mark.parametrize("target, kind, sentence", [
    ("hang", "timeout", r"^the child did not finish sleeping within 1 s; it was stopped$"),
    ("crash", "crash", r"^the child crashed \(SIGFPE\) while sleeping"),
    ("bomb", "memory", r"^the child ran out of memory \(limit 2\.0 GiB\) while sleeping$"),
])
def test_hangs_crashes_and_memory_bombs_become_one_sentence(worker: Worker, target: str, kind: str, sentence: str) -> None:
    with pytest.raises(WorkerFailure, match=sentence) as caught:
        worker.call(f"{TARGET}:{target}", actor="the child", doing="sleeping", timeout_s=1)
    assert caught.value.kind == kind
    assert worker.call(f"{TARGET}:add", actor="python", doing="adding", a=1, b=1) == 2  # a fresh child takes over


def test_exceptions_come_back_typed_and_user_errors_as_user_errors(worker: Worker) -> None:
    with pytest.raises(RemoteFailure, match=r"^ValueError: first line$"):
        worker.call(f"{TARGET}:raises", actor="python", doing="raising")
    with pytest.raises(OnnxmendError, match=r"^The input is bad; give another\.$"):
        worker.call(f"{TARGET}:user_error", actor="python", doing="raising")


LIMITED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (6 * 2**30, 6 * 2**30))
sys.path[:0] = sys.argv[1:]
from onnxmend.core.worker import Worker
with Worker(memory_bytes=64 * 2**30, env={"PYTHONPATH": ":".join(sys.path)}) as w:
    print(w.call("tests.core.test_worker:add", actor="python", doing="adding", a=2, b=2), w.memory_bytes)
"""


def test_a_worker_starts_under_a_lower_hard_memory_limit_than_its_own() -> None:
    # Under `ulimit -v` a child cannot be given more address space than its parent has; asking made every
    # worker fail to start, and the gate reported every graph as not verifiable.
    tests_root = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))
    done = subprocess.run([sys.executable, "-c", LIMITED, tests_root], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["4", str(6 * 2**30)]
