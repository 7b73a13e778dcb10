"""onnxruntime on an untrusted graph, in a worker process: a hang, a memory bomb or a native crash of
onnxruntime becomes one sentence ("onnxruntime crashed (SIGFPE) while running the input graph") instead
of taking onnxmend down.

:class:`IsolatedOnnxRunner` is a :class:`~onnxmend.runtime.runners.base.Runner` whose session lives in a
:class:`~onnxmend.core.worker.Worker`; the model is sent once, each ``run`` sends only the feeds. Several
runners may share one worker (the numeric gate keeps one per pipeline). ``timed_call`` is not offered:
timing across a process boundary measures the pipe, not the model.
"""

from __future__ import annotations

import atexit
import hashlib
import tempfile
import uuid
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import onnx

from onnxmend.core.errors import OnnxmendError
from onnxmend.core.fileio import save_model
from onnxmend.core.large import is_heavy
from onnxmend.core.specs import TensorSpec, specs_from_model
from onnxmend.core.worker import Worker
from onnxmend.runtime.runners.base import Arrays, check_feeds
from onnxmend.runtime.runners.ort_runner import with_outputs
from onnxmend.runtime.session import OptLevel, Provider

CHILD = "onnxmend.runtime.runners.isolated_child"
DEFAULT_RUN_TIMEOUT_S = 120.0
_SHARED: Worker | None = None


def shared_worker() -> Worker:
    """One onnxruntime worker per onnxmend process, started on first use and replaced after a failure;
    the gate and validation share it so that a pipeline pays the child's start-up once."""
    global _SHARED
    if _SHARED is None:
        _SHARED = Worker()
        atexit.register(_SHARED.close)
    return _SHARED


class IsolatedOnnxRunner:
    framework = "onnxruntime"

    def __init__(self, model: onnx.ModelProto, what: str, worker: Worker, provider: Provider = "cpu",
                 threads: int = 0, opt_level: OptLevel = "disable", timeout_s: float = DEFAULT_RUN_TIMEOUT_S) -> None:
        self.model, self.what, self.worker, self.timeout_s = model, what, worker, timeout_s
        self.options = {"provider": provider, "threads": threads, "opt_level": opt_level, "tf32": False}
        self._loaded: dict[str, int] = {}  # session key -> worker generation it was loaded in
        self.provider, self.fallback_reason = "", None
        self.key = self._load(model)

    @property
    def label(self) -> str:
        return f"onnxruntime {self.provider} (worker process)"

    @property
    def inputs(self) -> list[TensorSpec]:
        return specs_from_model(self.model)

    def run(self, feeds: Arrays) -> dict[str, np.ndarray]:
        check_feeds(self.inputs, feeds)
        return self._run(self.model, self.key, feeds)

    def capture(self, feeds: Arrays, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        wanted = list(names) if names is not None else [o for n in self.model.graph.node for o in n.output if o]
        widened = with_outputs(self.model, wanted)
        values = self._run(widened, self._load(widened), feeds)
        return {name: values[name] for name in wanted if name in values}

    def _run(self, model: onnx.ModelProto, key: str, feeds: Arrays) -> dict[str, np.ndarray]:
        if not self.worker.alive() or self._loaded.get(key) != self.worker.generation:  # a new child, no session
            self._load(model, key)
        return self.worker.call(f"{CHILD}:run", actor="onnxruntime", doing=f"running {self.what}",
                                timeout_s=self.timeout_s, key=key, feeds=dict(feeds))

    def timed_call(self, feeds: Arrays) -> Callable[[], object]:
        raise OnnxmendError("An isolated onnxruntime session cannot be timed; benchmark it in process.")

    def close(self) -> None:
        """Drop this runner's sessions from the worker (a big model's session holds its weights)."""
        if self.worker.alive():
            for key, generation in self._loaded.items():
                if generation == self.worker.generation:
                    try:
                        self.worker.call(f"{CHILD}:unload", actor="onnxruntime", doing=f"closing {self.what}",
                                         timeout_s=self.timeout_s, key=key)
                    except Exception:  # best effort: a worker that fails now is replaced on its next call
                        break
        self._loaded.clear()

    def _load(self, model: onnx.ModelProto, key: str | None = None) -> str:
        """Load ``model`` in the worker under ``key`` (by default a hash of the model). A heavy model (64 MiB
        of weights or more, or weights still in a data file) does not travel as bytes: it is saved with
        external data, one tensor at a time, to a temporary folder that the worker loads it from (under a
        fresh key: hashing the weights would cost more than loading them). As bytes, keras VGG16 (0.55 GB)
        took three copies of itself in this process (serialised, pickled, framed) and two more in the worker;
        past protobuf's 2 GiB it cannot go at all."""
        options = repr(sorted(self.options.items()))
        if is_heavy(model):
            key = key or f"large-{uuid.uuid4().hex}{options}"
            with tempfile.TemporaryDirectory(prefix="onnxmend-ort-") as folder:
                path = save_model(model, Path(folder) / "model.onnx", external_threshold=0)
                self._call_load(key, None, str(path), {"prepack": False})  # the weights held once
        else:
            data = model.SerializeToString()
            key = key or hashlib.sha1(data).hexdigest() + options
            self._call_load(key, data, None)
        self._loaded[key] = self.worker.generation
        return key

    def _call_load(self, key: str, data: bytes | None, path: str | None, extra: dict | None = None) -> None:
        self.provider, self.fallback_reason = self.worker.call(
            f"{CHILD}:load", actor="onnxruntime", doing=f"loading {self.what}", timeout_s=self.timeout_s,
            key=key, model=data, path=path, options={**self.options, **(extra or {})})
