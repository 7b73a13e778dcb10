"""Ops an exported graph holds that onnxruntime has no kernel for: one sentence, never a broken file.

tf2onnx exits successfully while leaving TFLite ops it cannot convert in the graph, under their TFLite
names (``TFL_BUCKETIZE``, ``TFL_Convolution2DTransposeBias``), and custom ops keep their own domain; the
file is written, and nothing loads it. :func:`check_runnable` reads the graph (without running it): an op
of the default or ``ai.onnx.ml`` domain with no ONNX schema at the model's opset, or an op of a domain
onnxruntime does not implement, is named with its count.

Non-goal: a standard op whose CPU kernel lacks one input type is not found here; onnxruntime says so
when validation opens the model.
"""

from __future__ import annotations

import collections

import onnx

from onnxmend.core.errors import OnnxmendError

_ONNX_DOMAINS = ("", "ai.onnx", "ai.onnx.ml")
# Domains whose ops onnxruntime implements itself (its contrib and layout-internal ops).
_ORT_DOMAINS = ("com.microsoft", "com.microsoft.nchwc", "com.ms.internal.nhwc")


def unrunnable_ops(model: onnx.ModelProto) -> dict[str, int]:
    """``op`` (``domain.op`` outside the ONNX domains) -> count, for every op onnxruntime cannot run."""
    opsets = {o.domain or "": int(o.version) for o in model.opset_import}
    local = {(f.domain, f.name) for f in model.functions}
    counts: collections.Counter[str] = collections.Counter()
    for node in _all_nodes(model.graph):
        domain = node.domain or ""
        if (domain, node.op_type) in local or domain in _ORT_DOMAINS:
            continue
        if domain not in _ONNX_DOMAINS:
            counts[f"{domain}.{node.op_type}"] += 1
            continue
        version = opsets.get(domain, opsets.get("ai.onnx" if domain == "" else "", 1))
        try:
            onnx.defs.get_schema(node.op_type, version, "" if domain == "ai.onnx" else domain)
        except onnx.defs.SchemaError:
            counts[node.op_type] += 1
    return dict(counts)


def check_runnable(model: onnx.ModelProto, what: str) -> None:
    """Raise one sentence naming every op of ``model`` that onnxruntime has no kernel for."""
    missing = unrunnable_ops(model)
    if missing:
        listed = ", ".join(f"{op} x{n}" for op, n in sorted(missing.items()))
        raise OnnxmendError(
            f"{what} holds ops the exporter could not convert and onnxruntime cannot run: {listed}; "
            "replace them in the source model."
        )


def _all_nodes(graph: onnx.GraphProto):
    for node in graph.node:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _all_nodes(attr.g)
            for sub in attr.graphs:
                yield from _all_nodes(sub)
