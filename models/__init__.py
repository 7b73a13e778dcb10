"""The reference zoo: small source models that reproduce the seed cases, usable as ``zoo:NAME``.

``ZOO`` maps each name to its :class:`ZooEntry`; ``build(name, seed)`` returns the framework model
(``onnxmend.exporters.zoo`` exports it). Nothing here imports torch or TensorFlow until a model is built.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

from onnxmend.core.errors import BadSourceError
from onnxmend.models.catalogue import ENTRIES
from onnxmend.models.entry import ZooEntry

__all__ = ["ZOO", "ZooEntry", "build", "zoo_entry", "zoo_names"]

ZOO: Mapping[str, ZooEntry] = MappingProxyType({e.name: e for e in ENTRIES})


def zoo_names() -> list[str]:
    return sorted(ZOO)


def zoo_entry(name: str) -> ZooEntry:
    """The entry called ``name``; an unknown name is a BadSourceError that lists the valid ones."""
    try:
        return ZOO[name]
    except KeyError:
        raise BadSourceError(f"There is no zoo model {name!r}; choose one of: {', '.join(zoo_names())}.") from None


def build(name: str, seed: int = 0) -> Any:
    """Build zoo model ``name``; torch modules come in eval mode with seeded ``example_inputs``."""
    spec = zoo_entry(name)
    model = spec.build(seed)
    if spec.framework == "torch":
        from onnxmend.models.weights import torch_example

        model.eval()
        model.example_inputs = tuple(
            torch_example(s.concrete_shape(), seed, s.dtype, s.value_range) for s in spec.inputs
        )
    return model
