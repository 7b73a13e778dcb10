"""The reference zoo: small source models that reproduce the seed cases, usable as ``zoo:NAME``.

``ZOO`` maps each name to its :class:`ZooEntry`; ``build(name, seed)`` returns the framework model and
``export_zoo(name, options)`` exports it through the torch or Keras exporter. Nothing here imports torch
or TensorFlow until a model is built.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Mapping

from onnxmend.core.errors import BadSourceError, OnnxmendError
from onnxmend.exporters.base import Export
from onnxmend.exporters.options import ExportOptions
from onnxmend.models.catalogue import ENTRIES
from onnxmend.models.entry import ZooEntry

__all__ = ["ZOO", "ZooEntry", "build", "export_zoo", "zoo_entry", "zoo_names"]

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


def export_zoo(name: str, options: ExportOptions) -> Export:
    """Build zoo model ``name`` with ``options.seed`` and export it with the exporter of its framework."""
    spec = zoo_entry(name)
    if options.weights:
        raise OnnxmendError(f"Zoo models build their own seeded weights; drop --weights for zoo:{name}.")
    model = build(name, options.seed)
    source = f"zoo:{name}"
    if spec.framework == "torch":
        from onnxmend.exporters.pytorch import export_module

        return export_module(
            model, source, options, input_names=[s.name for s in spec.inputs],
            output_names=list(spec.outputs), value_ranges=spec.value_ranges,
        )
    from onnxmend.exporters.keras import export_keras_model

    return export_keras_model(model, source, options, value_ranges=spec.value_ranges or None)
