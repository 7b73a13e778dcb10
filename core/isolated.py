"""Work on an untrusted graph that may hang, exhaust memory or crash natively, in a worker process: ONNX
shape inference here, constant folding in :mod:`onnxmend.passes.cleanup.fold_constants`.

Shape inference with data propagation runs C++ over whatever the file says: on a mutated graph it can
loop for good, allocate without bound or crash; graphsurgeon's constant folding runs onnxruntime on the
graph's constant subgraphs. Both run in one :func:`graph_worker`, so a hang, a memory bomb or a native
crash is one sentence ("ONNX shape inference did not finish inferring the shapes of the input graph within
120 s; it was stopped") instead of the end of onnxmend. The worker's memory limit grows with the model
(eight times its size, at least 4 GiB, at most the default limit), so a bomb cannot take the machine.

:func:`infer_shapes_isolated` runs every inference of a graph that came from a file or was rewritten
from one: the pass manager's first (lenient: an inference error leaves the model as given) and the strict
check of every rewrite (an inference error rejects the rewrite), and ``inspect``'s. A graph whose
inference is a memory bomb stays one in every rewrite, so none of them runs in process.
"""

from __future__ import annotations

import atexit
import logging

import onnx

from onnxmend.core.graph import infer_shapes
from onnxmend.core.large import adopt_inferred, is_heavy, is_large, skeleton
from onnxmend.core.worker import RemoteFailure, Worker, memory_limit_bytes

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT_S = 120.0
MIN_MEMORY_BYTES = 4 << 30
_WORKER: Worker | None = None
_ASKED = 0  # the memory limit the current worker was started with (before any hard limit lowered it)


def graph_worker(model_bytes: int) -> Worker:
    """The shared worker for work on a graph of ``model_bytes`` serialised bytes; replaced by one with a
    higher memory limit when a bigger model needs it."""
    global _WORKER, _ASKED
    ceiling = memory_limit_bytes()
    needed = max(MIN_MEMORY_BYTES, 8 * model_bytes)
    needed = min(needed, ceiling) if ceiling else needed
    if _WORKER is not None and _ASKED < needed:
        _WORKER.close()
        _WORKER = None
    if _WORKER is None:
        _WORKER, _ASKED = Worker(memory_bytes=needed), needed
        atexit.register(_WORKER.close)
    return _WORKER


def infer_shapes_isolated(model: onnx.ModelProto, what: str = "the input graph", strict: bool = False,
                          timeout_s: float = DEFAULT_TIMEOUT_S, in_place: bool = False) -> onnx.ModelProto:
    """:func:`~onnxmend.core.graph.infer_shapes` (with data propagation) run in the graph worker.

    A hang, a memory bomb or a crash raises :class:`~onnxmend.core.worker.WorkerFailure` (an OnnxmendError,
    one sentence). Lenient mode returns the model as given when inference fails; strict mode raises (a
    :class:`~onnxmend.core.worker.RemoteFailure` naming the inference error).

    A heavy model (:func:`~onnxmend.core.large.is_heavy`) travels as its skeleton and what inference found
    is written onto ``model`` itself when ``in_place`` (or when it is large), else onto a copy of it.
    """
    heavy = is_heavy(model)  # the worker infers the skeleton (big tensors stubbed), found shapes come back
    try:
        data = (skeleton(model) if heavy else model).SerializeToString()
    except Exception:  # past protobuf's 2 GiB: inference cannot take it either, in any process
        if strict:
            raise
        return model
    try:
        inferred = graph_worker(len(data)).call(
            f"{__name__}:infer_serialised", actor="ONNX shape inference", doing=f"inferring the shapes of {what}",
            timeout_s=timeout_s, data=data, strict=strict)
    except RemoteFailure as exc:  # inference refused the graph
        if strict:
            raise
        log.debug("shape inference of %s failed in its worker: %s", what, exc)
        return model
    if not heavy:
        return onnx.load_from_string(inferred)
    if not (in_place or is_large(model)):
        model = _copy(model)
    return adopt_inferred(model, onnx.load_from_string(inferred))


def _copy(model: onnx.ModelProto) -> onnx.ModelProto:
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    return copy


def infer_serialised(data: bytes, strict: bool) -> bytes:
    """The worker side: inference of a serialised model."""
    return infer_shapes(onnx.load_from_string(data), strict=strict).SerializeToString()
