"""Export options shared by every exporter, and the ``--input name:1x3x224x224[:float32]`` parser."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from onnxmend.core.errors import OnnxmendError

DEFAULT_OPSET = 17
_DTYPES = {"float32", "float16", "float64", "int64", "int32", "int8", "uint8", "bool"}
_INPUT_RE = re.compile(r"^(?P<name>[^:]+):(?P<shape>[0-9?x\-]+|scalar)(?::(?P<dtype>[a-z0-9]+))?$")


@dataclass(frozen=True)
class InputArg:
    """One ``--input`` value. ``None`` in the shape is a dynamic dimension (written ``?`` or ``-1``)."""

    name: str
    shape: tuple[int | None, ...]
    dtype: str = "float32"


@dataclass(frozen=True)
class ExportOptions:
    inputs: tuple[InputArg, ...] = ()
    opset: int = DEFAULT_OPSET
    dynamic_batch: bool = False
    torch_exporter: Literal["dynamo", "legacy"] = "dynamo"
    weights: str | None = None
    seed: int = 0
    # Load source files whose loading runs code from the file (pickled modules, Keras Lambda layers).
    trust_source: bool = False
    # --keep-interface: the source's own input names and dynamic dims (no stable renaming, no batch 1).
    keep_interface: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    framework: str | None = None  # what a file.py:factory builds (torch, paddle, mindspore); None: its imports say


def parse_input_arg(text: str) -> InputArg:
    """Parse ``name:1x3x224x224`` or ``name:1x3x224x224:float32``; ``?``/``-1`` mark dynamic dims."""
    match = _INPUT_RE.match(text.strip())
    if not match:
        raise OnnxmendError(
            f"Cannot parse input {text!r}; write it as NAME:DIMxDIMx...[:DTYPE], e.g. x:1x3x224x224:float32."
        )
    dtype = match["dtype"] or "float32"
    if dtype not in _DTYPES:
        raise OnnxmendError(f"Unknown dtype {dtype!r} in input {text!r}; use one of {', '.join(sorted(_DTYPES))}.")
    shape_text = match["shape"]
    dims: list[int | None] = []
    if shape_text != "scalar":
        for part in shape_text.split("x"):
            if part in ("?", "-1"):
                dims.append(None)
            elif part.isdigit() and int(part) > 0:
                dims.append(int(part))
            else:
                raise OnnxmendError(f"Bad dimension {part!r} in input {text!r}; dimensions are positive integers or ?.")
    return InputArg(match["name"], tuple(dims), dtype)
