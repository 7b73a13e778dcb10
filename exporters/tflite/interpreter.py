"""The TFLite interpreter: ai-edge-litert's, or TensorFlow's deprecated ``tf.lite.Interpreter`` when
ai-edge-litert is not installed (same kernels, same results; TF warns it is scheduled for deletion).

Runs take the default op resolver (XNNPACK where it applies), as a deployed model would. Captures take a
second interpreter with ``experimental_preserve_all_tensors=True`` and *no* default delegates, since a
delegate computes its partition in one opaque node and keeps none of the tensors inside it.
"""

from __future__ import annotations

import logging
import re
import warnings
from typing import Any

from onnxmend.core.deps import available, require

log = logging.getLogger(__name__)


def runtime_name() -> str:
    """Which interpreter this process uses, with its version."""
    if available("ai_edge_litert"):
        from importlib.metadata import version

        return f"ai-edge-litert {version('ai-edge-litert')}"
    return f"tf.lite.Interpreter (TensorFlow {require('tensorflow').__version__})"


def make_interpreter(data: bytes, preserve_all: bool = False) -> Any:
    """An interpreter on the flatbuffer ``data``, tensors allocated."""
    if available("ai_edge_litert"):
        module = require("ai_edge_litert.interpreter")
    else:
        log.info("ai-edge-litert is not installed; using TensorFlow's deprecated tf.lite.Interpreter")
        module = require("tensorflow").lite
    kwargs: dict[str, Any] = {}
    if preserve_all:
        resolvers = getattr(module, "OpResolverType", None) or module.experimental.OpResolverType
        kwargs = dict(experimental_preserve_all_tensors=True,
                      experimental_op_resolver_type=resolvers.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation and "preserve_all_tensors is for debugging" notices
        interpreter = module.Interpreter(model_content=data, **kwargs)
    interpreter.allocate_tensors()
    return interpreter


def signature_names(interpreter: Any) -> tuple[dict[int, str], dict[int, str]]:
    """Tensor index -> signature name, for inputs and outputs (empty where the model has no signature)."""
    signatures = getattr(interpreter, "_get_full_signature_list", lambda: {})() or {}
    if len(signatures) != 1:
        return {}, {}
    signature = next(iter(signatures.values()))
    return ({i: n for n, i in signature.get("inputs", {}).items()},
            {i: n for n, i in signature.get("outputs", {}).items()})


def io_tensors(interpreter: Any) -> tuple[list[tuple[str, dict]], list[tuple[str, dict]]]:
    """(name, tensor details) of every input and output, named by the model's signature where it has one
    (``keras_tensor``, ``output_0``), else by the tensor's own name without its ``:0``; names are valid
    ``--input`` names, the same in the exporter's graph and in the runner."""
    by_signature = signature_names(interpreter)
    result = []
    for details, names in ((interpreter.get_input_details(), by_signature[0]),
                           (interpreter.get_output_details(), by_signature[1])):
        seen: set[str] = set()
        named = []
        for d in details:
            name = _clean(names.get(d["index"]) or d["name"])
            while name in seen:
                name += "_"
            seen.add(name)
            named.append((name, d))
        result.append(named)
    return result[0], result[1]


def _clean(name: str) -> str:
    name = name.split(":")[0].removeprefix("serving_default_")
    return re.sub(r"[^A-Za-z0-9_.\-/]", "_", name) or "tensor"
