"""Reading and applying the interface changes passes record in model metadata.

A pass that changes a graph input or output (``io-layout`` turning NHWC into NCHW) records, under the
metadata key ``onnxmend.interface``, ``{tensor: {kind, perm, was, now}}`` meaning
``new = transpose(old, perm)``. Validation, the pass gate and benchmarks read it to feed source-layout
inputs and to compare outputs in the source's layout. A model file is untrusted input: metadata that is
not a well-formed record (not JSON, a perm that is not a permutation) is ignored, never a crash.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Mapping

import numpy as np
import onnx

from onnxmend.core.specs import TensorSpec, specs_from_model

INTERFACE_KEY = "onnxmend.interface"


def read_interface(model: onnx.ModelProto) -> dict[str, dict[str, object]]:
    """The recorded interface changes; malformed entries are dropped."""
    for prop in model.metadata_props:
        if prop.key == INTERFACE_KEY:
            try:
                data = json.loads(prop.value)
            except (ValueError, TypeError, RecursionError):  # not JSON, not text, nested past Python's stack
                return {}
            if not isinstance(data, dict):
                return {}
            return {k: v for k, v in data.items() if isinstance(k, str) and _well_formed(v)}
    return {}


def _well_formed(change: object) -> bool:
    if not isinstance(change, dict) or change.get("kind") not in ("input", "output"):
        return False
    perm = change.get("perm")
    return isinstance(perm, list) and all(isinstance(p, int) for p in perm) and sorted(perm) == list(range(len(perm)))


def write_interface(model: onnx.ModelProto, interface: Mapping[str, Mapping[str, object]]) -> None:
    set_metadata(model, INTERFACE_KEY, json.dumps(interface, sort_keys=True))


def set_metadata(model: onnx.ModelProto, key: str, value: str) -> None:
    for prop in model.metadata_props:
        if prop.key == key:
            prop.value = value
            return
    model.metadata_props.add(key=key, value=value)


def get_metadata(model: onnx.ModelProto, key: str) -> str | None:
    return next((prop.value for prop in model.metadata_props if prop.key == key), None)


def adapt_feeds(feeds: Mapping[str, np.ndarray], model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Turn inputs in the source's layout into what ``model`` takes."""
    interface = read_interface(model)
    adapted = {}
    for name, value in feeds.items():
        change = interface.get(name)
        if change and change["kind"] == "input" and np.ndim(value) == len(change["perm"]):  # type: ignore[arg-type]
            value = np.ascontiguousarray(np.transpose(value, change["perm"]))
        adapted[name] = value
    return adapted


def restore_outputs(outputs: Mapping[str, np.ndarray], model: onnx.ModelProto) -> dict[str, np.ndarray]:
    """Turn ``model``'s outputs back into the source's layout."""
    interface = read_interface(model)
    restored = {}
    for name, value in outputs.items():
        change = interface.get(name)
        if change and change["kind"] == "output" and np.ndim(value) == len(change["perm"]):  # type: ignore[arg-type]
            value = np.transpose(value, np.argsort(change["perm"]))
        restored[name] = value
    return restored


def source_layout_specs(model: onnx.ModelProto) -> list[TensorSpec]:
    """``model``'s input specs in the layout the source took (undoing recorded interface changes)."""
    interface = read_interface(model)
    specs = []
    for spec in specs_from_model(model):
        change = interface.get(spec.name)
        if change and change["kind"] == "input" and len(spec.shape) == len(change["perm"]):  # type: ignore[arg-type]
            inverse = np.argsort(change["perm"])
            spec = replace(spec, shape=tuple(spec.shape[i] for i in inverse))
        specs.append(spec)
    return specs
