"""Capture by forward hooks, for the frameworks whose models are trees of named children (Paddle sublayers,
MindSpore sub-cells): one hook per wanted child, one run, each child's first output kept as an array."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import numpy as np

from onnxmend.core.errors import OnnxmendError

Register = Callable[[Any, Callable[..., None]], Any]  # (child, hook) -> a handle with .remove()


def capture_with_hooks(children: Mapping[str, Any], names: Sequence[str] | None, register: Register,
                       first_array: Callable[[Any], np.ndarray | None], run: Callable[[], object],
                       no_child: str) -> dict[str, np.ndarray]:
    """``run`` once with a hook on each child in ``names`` (all of ``children`` when None); ``first_array``
    turns a child's output into the array kept (None: nothing to keep). ``no_child`` is the sentence's start
    for a name that is not a child ("The Paddle Layer has no sublayer named")."""
    wanted = list(names) if names is not None else list(children)
    unknown = [n for n in wanted if n not in children]
    if unknown:
        raise OnnxmendError(f"{no_child} {unknown[0]!r}.")
    captured: dict[str, np.ndarray] = {}

    def keeper(name: str) -> Callable[..., None]:
        def hook(_child: Any, _inputs: Any, output: Any) -> None:
            array = first_array(output)
            if array is not None:
                captured[name] = array
        return hook

    handles = [register(children[n], keeper(n)) for n in wanted]
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return captured
