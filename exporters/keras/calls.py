"""Calling a Keras model the way both the exporter and the runner do, and TensorFlow-safe names/shapes."""

from __future__ import annotations

import re
from typing import Any, Sequence

from onnxmend.core.deps import require

_TF_NAME = re.compile(r"[^A-Za-z0-9_.\-/]")


def call_model(model: Any, args: Sequence[Any], out_names: Sequence[str]) -> dict[str, Any]:
    keras = require("keras")
    outputs = model(list(args) if len(args) > 1 else args[0], training=False)
    flat = keras.tree.flatten(outputs)
    # A subclassed model names no outputs before it runs.
    names = out_names or (["output"] if len(flat) == 1 else [f"output_{i}" for i in range(len(flat))])
    return dict(zip(names, flat))


def tf_shape(shape: Sequence[int | str | None]) -> tuple[int | None, ...]:
    return tuple(d if isinstance(d, int) else None for d in shape)


def tf_name(name: str) -> str:
    cleaned = _TF_NAME.sub("_", name.split(":")[0]) or "input"
    return cleaned if cleaned[0].isalnum() or cleaned[0] == "." else f"t{cleaned}"
