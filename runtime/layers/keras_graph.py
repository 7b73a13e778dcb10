"""A functional or Sequential Keras model as a :class:`~onnxmend.runtime.layers.graph.SourceGraph`.

Layers are the model's operations (``model.operations``: layers and the ``keras.ops`` calls between them,
such as a residual ``add``), in the order Keras runs them; a nested model is one layer. Facts come from
each layer's config; ``padding="same"`` is turned into explicit pads from the layer's input size.
"""

from __future__ import annotations

from typing import Any

from onnxmend.core.errors import OnnxmendError
from onnxmend.runtime.layers.graph import SourceGraph, SourceLayer, as_list, axis_letters, same_pads

_CONVS = ("Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D", "SeparableConv2D",
          "Conv2DTranspose")
_POOLS = ("MaxPooling2D", "AveragePooling2D", "MaxPooling1D", "AveragePooling1D")


def keras_graph(model: Any) -> SourceGraph:
    """The layers of ``model`` in network order (InputLayers left out)."""
    operations = getattr(model, "operations", None) or getattr(model, "layers", None)
    if not operations or not getattr(model, "inputs", None):
        raise OnnxmendError("This Keras model has no layer graph to map (a subclassed model); use a functional model.")
    layers = []
    for op in operations:
        if type(op).__name__ == "InputLayer":
            continue
        params = tuple((getattr(w, "path", None) or w.name, tuple(int(d) for d in w.shape))
                       for w in getattr(op, "weights", []))
        layers.append(SourceLayer(op.name, type(op).__name__, len(layers), params, keras_facts(op),
                                  tuple(_producers(op)), container=hasattr(op, "layers")))
    return SourceGraph("keras", layers, channels_last=True)


def keras_facts(op: Any) -> dict[str, object]:
    """``op``'s configuration as comparable facts."""
    try:
        config = op.get_config()
    except Exception:  # noqa: BLE001 - custom layers may not implement get_config
        config = {}
    kind = type(op).__name__
    facts: dict[str, object] = {}
    rank = _rank(op)
    if kind in _CONVS or kind in _POOLS:
        facts.update(_window_facts(op, config, kind))
    elif kind == "BatchNormalization":
        axis = config.get("axis", -1)
        facts.update(epsilon=config.get("epsilon"), momentum=config.get("momentum"),
                     axes=axis_letters(axis if isinstance(axis, list) else [axis], rank or 4, True))
    elif kind == "LayerNormalization":
        axis = config.get("axis", -1)
        facts.update(epsilon=config.get("epsilon"),
                     axes=axis_letters(axis if isinstance(axis, list) else [axis], rank or 4, True))
    elif kind == "ZeroPadding2D":
        (top, bottom), (left, right) = config.get("padding", ((0, 0), (0, 0)))
        facts["pads"] = [top, left, bottom, right]
    elif kind == "Dense":
        facts["units"] = config.get("units")
    elif kind in ("ReLU", "Activation", "LeakyReLU", "ELU"):
        facts["activation"] = config.get("activation", kind.lower())
        for key in ("max_value", "negative_slope", "threshold", "alpha"):
            if config.get(key) not in (None, 0, 0.0):
                facts[key] = config[key]
    if config.get("activation") not in (None, "linear") and kind in _CONVS + ("Dense",):
        facts["activation"] = config["activation"]
    if "epsilon" in config and "epsilon" not in facts:
        facts["epsilon"] = config["epsilon"]
    return {k: v for k, v in facts.items() if v is not None}


def _window_facts(op: Any, config: dict, kind: str) -> dict[str, object]:
    window = config.get("kernel_size", config.get("pool_size", 1))
    spatial = len(window) if isinstance(window, (list, tuple)) else (_rank(op) or 4) - 2
    kernel = as_list(window, spatial)
    strides = as_list(config.get("strides") or kernel, spatial)
    dilations = as_list(config.get("dilation_rate", 1), spatial)
    facts: dict[str, object] = {"kernel": kernel, "strides": strides, "dilations": dilations,
                                "padding": config.get("padding")}
    size = _input_spatial(op, spatial)
    if config.get("padding") == "same":
        facts["pads"] = same_pads(size, kernel, strides, dilations) if size else None
    elif config.get("padding") == "valid":
        facts["pads"] = [0] * (2 * spatial)
    channels = _input_channels(op)
    if kind.startswith("Depthwise"):
        facts["group"] = channels
    elif kind in _CONVS:
        facts["group"] = int(config.get("groups", 1))
    return facts


def _producers(op: Any) -> list[str]:
    nodes = getattr(op, "_inbound_nodes", None) or []
    if not nodes:
        return []
    names = []
    for tensor in getattr(nodes[0], "input_tensors", []) or []:
        history = getattr(tensor, "_keras_history", None)
        operation = getattr(history, "operation", None) if history is not None else None
        if operation is not None and type(operation).__name__ != "InputLayer":
            names.append(operation.name)
    return names


def _input_shape(op: Any) -> tuple | None:
    try:
        tensor = op.input
    except (AttributeError, ValueError):
        return None
    tensor = tensor[0] if isinstance(tensor, (list, tuple)) and tensor else tensor
    shape = getattr(tensor, "shape", None)
    return tuple(shape) if shape is not None else None


def _rank(op: Any) -> int | None:
    shape = _input_shape(op)
    return len(shape) if shape is not None else None


def _input_spatial(op: Any, spatial: int) -> list[int] | None:
    shape = _input_shape(op)
    if shape is None or len(shape) != spatial + 2:
        return None
    dims = list(shape[1:-1])
    return dims if all(isinstance(d, int) for d in dims) else None


def _input_channels(op: Any) -> int | None:
    shape = _input_shape(op)
    return int(shape[-1]) if shape and isinstance(shape[-1], int) else None
