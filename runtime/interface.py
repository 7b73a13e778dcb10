"""Reading and applying the interface changes passes record in model metadata.

A pass that changes a graph input or output (``io-layout`` turning NHWC into NCHW) records, under the
metadata key ``onnxmend.interface``, ``{tensor: {kind, perm, was, now}}`` meaning
``new = transpose(old, perm)``. Validation and benchmarks read it to feed source-layout inputs and to
compare outputs in the source's layout.
"""

from __future__ import annotations

import json
from typing import Mapping

import numpy as np
import onnx

INTERFACE_KEY = "onnxmend.interface"


def read_interface(model: onnx.ModelProto) -> dict[str, dict[str, object]]:
    for prop in model.metadata_props:
        if prop.key == INTERFACE_KEY:
            return json.loads(prop.value)
    return {}


def write_interface(model: onnx.ModelProto, interface: Mapping[str, Mapping[str, object]]) -> None:
    set_metadata(model, INTERFACE_KEY, json.dumps(interface, sort_keys=True))


def set_metadata(model: onnx.ModelProto, key: str, value: str) -> None:
    for prop in model.metadata_props:
        if prop.key == key:
            prop.value = value
            return
    model.metadata_props.add(key=key, value=value)


def adapt_feeds(feeds: Mapping[str, np.ndarray], model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Turn inputs in the source's layout into what ``model`` takes."""
    interface = read_interface(model)
    adapted = {}
    for name, value in feeds.items():
        change = interface.get(name)
        if change and change["kind"] == "input":
            value = np.ascontiguousarray(np.transpose(value, change["perm"]))
        adapted[name] = value
    return adapted


def restore_outputs(outputs: Mapping[str, np.ndarray], model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Turn ``model``'s outputs back into the source's layout."""
    interface = read_interface(model)
    restored = {}
    for name, value in outputs.items():
        change = interface.get(name)
        if change and change["kind"] == "output":
            value = np.transpose(value, np.argsort(change["perm"]))
        restored[name] = value
    return restored
