"""Sources whose framework runs in a process of its own: TFLite, PaddlePaddle and MindSpore.

Why a process each: in one Python process ``import tensorflow`` then ``import paddle`` segfaults, and
``import paddle`` then ``import mindspore`` fails on an undefined symbol (tensorflow-cpu 2.21,
paddlepaddle 3.3.1, mindspore 2.10.0, measured here). All three resolve beside the pinned onnx 1.23.2,
numpy 2.4.6 and protobuf 7.36 in one environment, so one virtual environment serves every framework and
only the *processes* are kept apart: the least fragile split, since nothing is installed twice and the
user still types one command. Each framework gets one :class:`~onnxmend.core.worker.Worker` per onnxmend
process, started when a source first needs it (an import costs 2–3 s and ~0.4 GB), so ``convert``, which
exports once and validates twice, imports the framework once. A framework that one day needs other
numpy or protobuf versions would get its own interpreter the same way (``Worker`` runs ``sys.executable``
today); none does now.

The flow: the parent calls a child-side exporter (e.g. ``onnxmend.exporters.paddle.child:export_factory``),
which builds the model, exports it, keeps the live model in the child (:func:`keep`) and replies with a
:class:`RemoteExport`. :func:`remote_export` turns the reply into an
:class:`~onnxmend.exporters.base.Export` whose source model is a :class:`RemoteModel`: the worker, the key
of the live model, and the :class:`Recipe` that loads it again should the process have been restarted
(a crash or a timeout ends it). The runtime's remote runner sends run and capture requests to the same
worker, where the framework's child-side runner finds the model with :func:`live`.
"""

from __future__ import annotations

import importlib
import itertools
import os
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

import onnx

from onnxmend.core.deps import EXTRAS, available
from onnxmend.core.errors import MissingDependencyError
from onnxmend.core.specs import TensorSpec, output_specs_from_model
from onnxmend.core.worker import Worker
from onnxmend.exporters.base import Export, SourceKind, SourceModel
from onnxmend.exporters.kernels import check_runnable

# Exporting converts and, for int8 TFLite, calibrates: minutes on a busy 2-core machine.
EXPORT_TIMEOUT_S = 900.0
RUN_TIMEOUT_S = 300.0

# framework (also the name of its extra) -> (modules an export needs, the environment its process starts with)
FRAMEWORKS: dict[str, tuple[tuple[str, ...], dict[str, str]]] = {
    "tflite": (("tensorflow", "tf2onnx"), {"TF_CPP_MIN_LOG_LEVEL": "2"}),
    # paddle2onnx's Polygraphy optimizer would pip-install packages at run time; never let it.
    "paddle": (("paddle", "paddle2onnx"), {"POLYGRAPHY_AUTOINSTALL_DEPS": "0", "GLOG_minloglevel": "2"}),
    # MindSpore writes rank_0/om/analyze_fail.ir into the current folder when a compile fails; not there.
    "mindspore": (("mindspore",), {"GLOG_v": "3", "MS_OM_PATH": os.path.join(tempfile.gettempdir(), "onnxmend-mindspore")}),
}
# How a failure names the process: "Paddle crashed (SIGSEGV) while exporting net.py:make".
ACTORS = {"tflite": "TensorFlow Lite", "paddle": "Paddle", "mindspore": "MindSpore"}


@dataclass(frozen=True)
class Recipe:
    """How a child process loads a source model: ``target`` ("module:function") called with ``kwargs``."""

    target: str
    kwargs: dict[str, Any] = field(default_factory=dict)

    def load(self) -> Any:
        module_name, function_name = self.target.split(":")
        return getattr(importlib.import_module(module_name), function_name)(**self.kwargs)


@dataclass(frozen=True, eq=False)
class RemoteModel:
    """A source model that lives in ``worker``'s process under ``key``; ``recipe`` loads it again there."""

    framework: str
    worker: Worker
    key: str
    recipe: Recipe


@dataclass(frozen=True)
class RemoteExport:
    """What a child-side exporter sends back: the ONNX bytes, the I/O and how to find the model again."""

    onnx_bytes: bytes
    inputs: tuple[TensorSpec, ...]
    output_names: tuple[str, ...]  # the source's outputs, by their ONNX names
    exporter: str
    seconds: float
    key: str
    recipe: Recipe
    notes: tuple[str, ...] = ()
    output_steps: dict[str, float] = field(default_factory=dict)


# --- child side: the live models of this process ---------------------------------------------------

_LIVE: dict[str, Any] = {}
_KEYS = itertools.count()


def keep(model: Any, prefix: str) -> str:
    """Keep ``model`` alive in this (child) process; returns the key the runner will ask for."""
    key = f"{prefix}-{os.getpid()}-{next(_KEYS)}"
    _LIVE[key] = model
    return key


def live(key: str, recipe: Recipe) -> Any:
    """The model kept under ``key``; loaded with ``recipe`` when this process is a fresh one."""
    if key not in _LIVE:
        _LIVE[key] = recipe.load()
    return _LIVE[key]


def rename_tensors(model: onnx.ModelProto, names: dict[str, str]) -> None:
    """Rename graph tensors everywhere they appear."""
    graph = model.graph
    for node in graph.node:
        node.input[:] = [names.get(n, n) for n in node.input]
        node.output[:] = [names.get(n, n) for n in node.output]
    for vi in list(graph.input) + list(graph.output) + list(graph.value_info):
        vi.name = names.get(vi.name, vi.name)


# --- parent side ------------------------------------------------------------------------------------

_WORKERS: dict[str, Worker] = {}


def framework_worker(framework: str) -> Worker:
    """This process's worker for ``framework``, started on first use (one sentence if it is not installed)."""
    modules, env = FRAMEWORKS[framework]
    missing = [m for m in modules if not available(m)]
    if missing:
        raise MissingDependencyError(EXTRAS.get(missing[0], (missing[0], ""))[0], framework)
    if framework not in _WORKERS:
        _WORKERS[framework] = Worker(env=env)
    return _WORKERS[framework]


def remote_export(framework: str, kind: SourceKind, target: str, source: str, **kwargs: Any) -> Export:
    """Run child-side exporter ``target`` in ``framework``'s worker and wrap its reply as an Export."""
    worker = framework_worker(framework)
    start = time.perf_counter()
    reply: RemoteExport = worker.call(target, actor=ACTORS[framework], doing=f"exporting {source}",
                                      timeout_s=EXPORT_TIMEOUT_S, source=source, **kwargs)
    model = onnx.load_from_string(reply.onnx_bytes)
    check_runnable(model, f"the ONNX export of {source}")
    outputs = output_specs_from_model(model)
    handle = RemoteModel(framework, worker, reply.key, reply.recipe)
    source_model = SourceModel(kind, framework, handle, reply.inputs, reply.output_names)
    exported = Export(model, list(reply.inputs), outputs, source_model, framework, reply.exporter, source,
                      reply.seconds, list(reply.notes), dict(reply.output_steps))
    exported.seconds = reply.seconds or time.perf_counter() - start
    return exported
