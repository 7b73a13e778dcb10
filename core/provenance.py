"""Provenance: which source layers an ONNX node answers for, read from exporters and kept by passes.

Every node may carry, in its ``metadata_props``:

- ``onnxmend.provenance``: a JSON list of *hints* naming the source layers the node computes. A hint is a
  torch module path (``features.3.conv.1``) or a TensorFlow name scope (``mobilenetv2_1.00_224_1/
  block_1_expand_BN_1``); matching hints to the layers a source model really has is the runtime's job
  (``runtime/layers/mapping.py``), since only it knows the source.
- ``onnxmend.absorbed``: a JSON list of ``{"op": ..., attribute: value}`` for nodes a rewrite removed
  into this one (the BatchNormalization folded into a Conv keeps its epsilon and momentum here).

:func:`exporter_hints` reads what each exporter leaves when the node has no recorded hints yet:

- torch dynamo: ``pkg.torch.onnx.name_scopes`` (``['', 'features', 'features.0', 'features.0.1', op]`` →
  ``features.0.1``), else ``namespace``; its optimizer merges BN into Conv and keeps the BN's scope, and the
  Conv's weight keeps its parameter name (``features.0.0.weight`` → ``features.0.0``), and the merged BN's
  call (``pkg.torch.onnx.fx_node``) keeps its momentum and epsilon, which become an absorbed record;
- torch legacy: scoped node names (``/features/features.1/body/body.0/Conv`` → ``features.1.body.0``);
- tf2onnx: Keras layer names as name-scope prefixes of the node and of its weights (``model_1/conv1_1/…``);
  a ``keras.ops`` call (a residual ``add``) is an op right under the model's scope.

Weights named after a layer are read only from initializers that feed one node (shared constants such as
tf2onnx's Clip bounds name an arbitrary layer). A model file is untrusted input: malformed metadata is
ignored, never a crash.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Iterable, Mapping

import onnx

PROVENANCE_KEY = "onnxmend.provenance"
ABSORBED_KEY = "onnxmend.absorbed"
# Weight-like inputs (position ≥ 1) of these ops name the layer that owns them.
WEIGHTED_OPS = frozenset({
    "Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization", "LayerNormalization",
    "GroupNormalization", "InstanceNormalization", "Mul", "Add", "PRelu",
})
_TORCH_PARAM = re.compile(r"^(?P<path>[A-Za-z0-9_.]+)\.(weight|bias|running_mean|running_var|scale|gamma|beta)$")
OP_PREFIX = "op:"  # a hint segment naming a keras.ops operation, matched exactly
_FX_ARGS = re.compile(r"args = \((?P<args>.*)\), kwargs")


def read_list(node: onnx.NodeProto, key: str) -> list | None:
    """The JSON list stored under ``key`` (None when absent or malformed)."""
    for prop in node.metadata_props:
        if prop.key == key:
            try:
                value = json.loads(prop.value)
            except (ValueError, TypeError):
                return None
            return value if isinstance(value, list) else None
    return None


def write_list(node: onnx.NodeProto, key: str, values: Iterable[object]) -> None:
    """Store ``values`` under ``key`` (replacing it); an empty list removes the key."""
    values = list(values)
    if node.metadata_props:  # (a freshly exported node has none: nothing to replace)
        kept = [p for p in node.metadata_props if p.key != key]
        del node.metadata_props[:]
        node.metadata_props.extend(kept)
    if values:
        node.metadata_props.add(key=key, value=json.dumps(values, sort_keys=True))


def recorded_hints(node: onnx.NodeProto) -> list[str] | None:
    values = read_list(node, PROVENANCE_KEY)
    return None if values is None else [v for v in values if isinstance(v, str)]


def recorded_absorbed(node: onnx.NodeProto) -> list[dict]:
    return [v for v in read_list(node, ABSORBED_KEY) or [] if isinstance(v, dict)]


def single_use_initializers(model: onnx.ModelProto) -> set[str]:
    """Initializer names read by exactly one node input: those may name the layer that owns them."""
    inits = {t.name for t in model.graph.initializer}
    uses: dict[str, int] = {}
    for node in model.graph.node:
        for name in node.input:
            if name in inits:
                uses[name] = uses.get(name, 0) + 1
    return {name for name, count in uses.items() if count == 1}


def exporter_hints(node: onnx.NodeProto, own_weights: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """The source-layer hints an exporter left on ``node`` (its metadata, its name, its weights' names)."""
    meta = {p.key: p.value for p in node.metadata_props}
    hints = [h for h in (_dynamo_path(meta), _legacy_path(node.name), _tf_scope(node.name)) if h]
    if node.op_type in WEIGHTED_OPS:
        for name in node.input[1:]:
            if name in own_weights:
                hint = _weight_hint(name)
                if hint:
                    hints.append(hint)
    return list(dict.fromkeys(hints))


def exporter_absorbed(node: onnx.NodeProto) -> list[dict]:
    """What the torch dynamo optimizer merged into ``node``: the BatchNorm's momentum (ONNX convention,
    ``running = m·running + (1 − m)·batch``) and epsilon, read from the merged call's arguments."""
    if not node.metadata_props:
        return []
    meta = {p.key: p.value for p in node.metadata_props}
    if "BatchNorm" not in meta.get("pkg.onnxscript.rewriter.rule_name", ""):
        return []
    found = _FX_ARGS.search(meta.get("pkg.torch.onnx.fx_node", ""))
    if not found or "batch_norm" not in meta.get("pkg.torch.onnx.fx_node", ""):
        return []
    numbers = []
    for arg in found.group("args").split(","):
        try:
            numbers.append(float(arg.strip()))
        except ValueError:
            continue
    if len(numbers) < 2:
        return []
    momentum, eps = numbers[-2], numbers[-1]
    return [{"op": "BatchNormalization", "epsilon": eps, "momentum": round(1.0 - momentum, 12),
             "via": "torch.onnx optimizer"}]


def _dynamo_path(meta: Mapping[str, str]) -> str:
    scopes = meta.get("pkg.torch.onnx.name_scopes")
    if scopes:
        try:
            parsed = ast.literal_eval(scopes)
        except (ValueError, SyntaxError, MemoryError, RecursionError):
            parsed = None
        if isinstance(parsed, list) and len(parsed) >= 2 and all(isinstance(s, str) for s in parsed):
            return parsed[-2]
    namespace = meta.get("namespace")
    if namespace:
        names = [part.split(":")[0].strip() for part in namespace.split("/")]
        return names[-2] if len(names) >= 2 else ""
    return ""


def _legacy_path(name: str) -> str:
    """The module path of a TorchScript-exported node name: ``/a/a.0/body/body.1/Conv`` → ``a.0.body.1``.

    Each scope is named relative to the nearest enclosing module that is not a plain container, so a
    segment that does not extend the previous one starts below the path built so far."""
    if not name.startswith("/"):
        return ""
    segments = [s for s in name.split("/")[1:-1] if s]
    base, full, previous = "", "", None
    for segment in segments:
        if previous is not None and not segment.startswith(previous + "."):
            base = full
        full = f"{base}.{segment}" if base else segment
        previous = segment
    return full


def _tf_scope(name: str) -> str:
    """A TensorFlow node or tensor name without its op: ``model_1/conv1_1/BiasAdd`` → ``model_1/conv1_1``.

    An op right under the model's scope is a ``keras.ops`` call, which Keras names after the op
    (``model_1/Add_1`` is the operation ``add_1``): that gives ``model_1/op:add_1``, matched exactly."""
    if name.startswith("/") or "/" not in name:
        return ""
    parts = name.split(":")[0].split("/")
    if len(parts) == 2:
        return f"{parts[0]}/{OP_PREFIX}{parts[1].lower()}"
    return "/".join(parts[:-1])


def _weight_hint(name: str) -> str:
    match = _TORCH_PARAM.match(name)
    if match and "/" not in name:
        return match.group("path")
    return _tf_scope(name)
