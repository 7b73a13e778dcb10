"""onnxruntime sessions: CUDA when it is present and works, CPU otherwise, and always say which.

For validation the CUDA provider runs with TF32 off (``use_tf32=0``), so fp32 parity is not hidden
behind 10-bit mantissas; benchmarks may turn it on.
"""

from __future__ import annotations

import contextlib
import functools
import io
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Mapping

import numpy as np
import onnx
import onnxruntime as ort

from onnxmend.core.errors import OnnxmendError, first_line
from onnxmend.core.fileio import save_model
from onnxmend.core.large import has_lazy

log = logging.getLogger(__name__)
# onnxruntime logs provider-load failures as C++ errors on stderr; we report them in one sentence instead.
ort.set_default_logger_severity(3)

Provider = Literal["auto", "cpu", "cuda"]
OptLevel = Literal["disable", "basic", "extended", "all"]
_OPT_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}


@dataclass
class Session:
    """An onnxruntime session plus the facts a report needs about how it was made."""

    inner: ort.InferenceSession
    provider: str  # "CUDAExecutionProvider" or "CPUExecutionProvider"
    threads: int
    opt_level: str
    fallback_reason: str | None = None

    @property
    def input_names(self) -> list[str]:
        return [i.name for i in self.inner.get_inputs()]

    @property
    def output_names(self) -> list[str]:
        return [o.name for o in self.inner.get_outputs()]

    def run(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        missing = [n for n in self.input_names if n not in feeds]
        if missing:
            raise OnnxmendError(f"No value given for model input(s) {', '.join(missing)}.")
        values = self.inner.run(None, {n: feeds[n] for n in self.input_names})
        return dict(zip(self.output_names, values))


def cuda_available() -> bool:
    """The CUDA provider is installed *and* starts (onnxruntime-gpu on a CPU-only machine lists it but fails)."""
    return cuda_unavailable_reason() is None


@functools.cache
def cuda_unavailable_reason() -> str | None:
    """Why CUDA cannot be used here, or None when it can; probed once per process with a 1-node model."""
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        return "onnxruntime has no CUDA provider here (install onnxruntime-gpu)"
    _preload_cuda_libraries()
    probe = _probe_model()
    ort.set_default_logger_severity(4)  # a missing libcublas is reported below, not as a C++ log line
    try:
        session = ort.InferenceSession(probe, session_options(), providers=["CUDAExecutionProvider"])
    except Exception as exc:  # ORT raises its own Fail/RuntimeException types
        return f"the CUDA provider failed to start ({first_line(exc)})"
    finally:
        ort.set_default_logger_severity(3)
    if session.get_providers()[0] != "CUDAExecutionProvider":
        return "the CUDA provider is installed but could not start (no usable GPU or CUDA libraries)"
    return None


def _preload_cuda_libraries() -> None:
    """Load the CUDA and cuDNN libraries from NVIDIA's pip packages (``onnxruntime-gpu[cuda,cudnn]``) when
    they are installed there rather than on the system; a no-op where they are absent or already loaded."""
    preload = getattr(ort, "preload_dlls", None)
    if preload is None:
        return
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # it prints its own hints; the probe below says why
            preload(cuda=True, cudnn=True, directory="")
    except Exception as exc:  # a missing or mismatched library: the probe session below names the failure
        log.debug("onnxruntime.preload_dlls: %s", first_line(exc))


def _probe_model() -> bytes:
    node = onnx.helper.make_node("Relu", ["x"], ["y"])
    value = [onnx.helper.make_tensor_value_info(n, onnx.TensorProto.FLOAT, [1]) for n in ("x", "y")]
    graph = onnx.helper.make_graph([node], "probe", [value[0]], [value[1]])
    model = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model.SerializeToString()


def cuda_provider_options(tf32: bool) -> dict[str, str]:
    return {"use_tf32": "1" if tf32 else "0"}


def session_options(threads: int = 0, opt_level: OptLevel = "all", prepack: bool = True) -> ort.SessionOptions:
    """``prepack=False`` keeps onnxruntime from packing MatMul/Gemm weights into a second copy when the
    session starts: the same results, a little slower, and a heavy model's weights held once (keras VGG16's
    session from external data peaked at 0.86 GB with packing, 0.63 GB without)."""
    opts = ort.SessionOptions()
    opts.graph_optimization_level = _OPT_LEVELS[opt_level]
    opts.log_severity_level = 3
    if not prepack:
        opts.add_session_config_entry("session.disable_prepacking", "1")
    if threads:
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
    return opts


def create_session(
    model: onnx.ModelProto | bytes | str,
    provider: Provider = "auto",
    threads: int = 0,
    opt_level: OptLevel = "all",
    tf32: bool = False,
    prepack: bool = True,
) -> Session:
    """Create a session on CUDA if asked (or ``auto`` and available), falling back to CPU with a reason.

    A model whose weights are still in its input's data file (:mod:`onnxmend.core.lazy`) is saved with
    external data to a temporary folder and loaded from there (onnxruntime cannot read those references).
    """
    if isinstance(model, onnx.ModelProto) and has_lazy(model):
        with tempfile.TemporaryDirectory(prefix="onnxmend-session-") as folder:
            path = save_model(model, Path(folder) / "model.onnx", external_threshold=0)
            return create_session(str(path), provider, threads, opt_level, tf32, prepack)
    source = model if isinstance(model, (str, bytes)) else model.SerializeToString()
    opts = session_options(threads, opt_level, prepack)
    fallback: str | None = None
    if provider in ("auto", "cuda"):
        fallback = cuda_unavailable_reason()
        if fallback is None:
            try:
                inner = ort.InferenceSession(
                    source, opts,
                    providers=[("CUDAExecutionProvider", cuda_provider_options(tf32)), "CPUExecutionProvider"],
                )
                return Session(inner, "CUDAExecutionProvider", threads, opt_level)
            except Exception as exc:  # ORT raises its own Fail/RuntimeException types
                fallback = f"the CUDA provider failed to create a session ({first_line(exc)})"
        if provider == "cuda":
            raise OnnxmendError(f"CUDA was requested, but {fallback}.")
        log.info("Using CPU: %s.", fallback)
    try:
        inner = ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise OnnxmendError(f"onnxruntime cannot load the model: {first_line(exc)}") from exc
    return Session(inner, "CPUExecutionProvider", threads, opt_level, fallback)
