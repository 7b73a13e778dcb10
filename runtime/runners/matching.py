"""Matching two interfaces: feeding one model the inputs of another and reading its outputs back.

``validate PORT.onnx --source ORIGINAL`` compares a model with a source it was *not* exported from (a torch
port of a Keras model): the two agree on what the inputs mean, not on their names or layouts.
:func:`match_inputs` pairs every source input with a model input — by name when the names agree, else by
position — and finds the permutation that turns the source's array into the model's (identity when the
shapes already agree, else NHWC↔NCHW or NLC↔NCL, the only layout changes frameworks make; a model whose
producer is PyTorch is NCHW even when a square tensor's shape cannot tell). :class:`MatchedRunner` then
runs the model on source-layout feeds and gives its outputs the source's names and layout, permuted
back by the same rule on their shapes. Interfaces that cannot be matched are one sentence (exit code 2).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Sequence

import numpy as np
import onnx

from onnxmend.core.errors import OnnxmendError
from onnxmend.core.interface import get_metadata
from onnxmend.core.specs import TensorSpec
from onnxmend.exporters.base import Export
from onnxmend.runtime.runners.base import Arrays, Runner

# new = transpose(old, perm): the layout changes between frameworks, by rank.
LAYOUT_PERMS: dict[int, tuple[tuple[int, ...], ...]] = {
    3: ((0, 2, 1),), 4: ((0, 3, 1, 2), (0, 2, 3, 1)), 5: ((0, 4, 1, 2, 3), (0, 2, 3, 4, 1)),
}


@dataclass(frozen=True)
class InputBinding:
    source: str
    model: str
    perm: tuple[int, ...] | None  # model input = transpose(source input, perm); None: as is

    def describe(self) -> str:
        where = self.source if self.source == self.model else f"{self.source} → {self.model}"
        return where + (f" transposed {list(self.perm)}" if self.perm else "")


@dataclass(frozen=True)
class InterfaceMatch:
    inputs: tuple[InputBinding, ...]
    by: str  # "name" or "position"

    @property
    def perm_hint(self) -> tuple[int, ...] | None:
        return next((b.perm for b in self.inputs if b.perm), None)

    @property
    def identity(self) -> bool:
        return self.by == "name" and all(b.perm is None and b.source == b.model for b in self.inputs)

    def adapt(self, feeds: Arrays) -> dict[str, np.ndarray]:
        return {b.model: _apply(feeds[b.source], b.perm) for b in self.inputs if b.source in feeds}

    def describe(self) -> str:
        return f"inputs matched by {self.by}: " + ", ".join(b.describe() for b in self.inputs)


def match_inputs(source: Sequence[TensorSpec], model: Sequence[TensorSpec], nchw_model: bool = False) -> InterfaceMatch:
    """Pair ``source`` inputs with ``model`` inputs and find each one's layout permutation."""
    if len(source) != len(model):
        raise OnnxmendError(
            f"The source takes {len(source)} input(s) and the model {len(model)}; their interfaces cannot be matched."
        )
    by_name = {s.name for s in source} == {m.name for m in model}
    models = {m.name: m for m in model}
    pairs = [(s, models[s.name]) for s in source] if by_name else list(zip(source, model))
    bindings = []
    for s, m in pairs:
        perm = input_perm(s, m, nchw_model)
        if perm is False:
            raise OnnxmendError(
                f"Source input {s.name} {_shape_text(s.shape)} matches no layout of model input {m.name} "
                f"{_shape_text(m.shape)}; give both the same input with --input."
            )
        bindings.append(InputBinding(s.name, m.name, perm or None))  # type: ignore[arg-type]
    return InterfaceMatch(tuple(bindings), "name" if by_name else "position")


def input_perm(source: TensorSpec, model: TensorSpec, nchw_model: bool) -> tuple[int, ...] | None | bool:
    """The permutation turning ``source`` into ``model`` (None: identity; False: none fits)."""
    candidates: list[tuple[int, ...] | None] = [None, *LAYOUT_PERMS.get(len(source.shape), ())]
    if nchw_model and source.layout in ("NHWC", "NLC"):
        candidates = [*LAYOUT_PERMS.get(len(source.shape), ())[:1], *candidates]
    for perm in candidates:
        if len(source.shape) == len(model.shape) and _fits(source.shape, model.shape, perm):
            return perm
    return False


def restore_outputs(outputs: Arrays, names: Sequence[str], shapes: Sequence[tuple | None],
                    hint: tuple[int, ...] | None) -> dict[str, np.ndarray]:
    """``outputs`` renamed to the source's ``names`` (by name, else by position) in the source's layout,
    judged from the source's output ``shapes`` (None entries: unknown, then ``hint`` decides)."""
    if len(outputs) != len(names):
        raise OnnxmendError(
            f"The source has {len(names)} output(s) and the model {len(outputs)}; they cannot be paired."
        )
    ordered = [outputs[n] for n in names] if set(outputs) == set(names) else list(outputs.values())
    return {n: _back(v, shape, hint) for n, v, shape in zip(names, ordered, shapes)}


class MatchedRunner:
    """An ONNX runner seen through an :class:`InterfaceMatch`: takes and returns the source's arrays."""

    def __init__(self, runner: Runner, match: InterfaceMatch, outputs: Sequence[TensorSpec],
                 inputs: Sequence[TensorSpec] = ()) -> None:
        self.runner, self.match = runner, match
        self.source_inputs = list(inputs)
        self.framework = runner.framework
        self.output_names = [o.name for o in outputs]
        self.output_shapes = [tuple(o.shape) if all(isinstance(d, int) for d in o.shape) else None for o in outputs]

    @property
    def label(self) -> str:
        return self.runner.label

    @property
    def inputs(self) -> list[TensorSpec]:
        """What ``run`` takes: the source's inputs."""
        return self.source_inputs or self.runner.inputs

    def run(self, feeds: Arrays) -> dict[str, np.ndarray]:
        result = self.runner.run(self.match.adapt(feeds))
        return restore_outputs(result, self.output_names, self.output_shapes, self.match.perm_hint)

    def capture(self, feeds: Arrays, names: Sequence[str] | None = None) -> dict[str, np.ndarray]:
        return self.runner.capture(self.match.adapt(feeds), names)

    def timed_call(self, feeds: Arrays) -> Callable[[], object]:
        return self.runner.timed_call(self.match.adapt(feeds))


def _fits(source: tuple, model: tuple, perm: tuple[int, ...] | None) -> bool:
    moved = source if perm is None else tuple(source[i] for i in perm)
    return all(not isinstance(a, int) or not isinstance(b, int) or a == b for a, b in zip(moved, model))


def _apply(value: np.ndarray, perm: tuple[int, ...] | None) -> np.ndarray:
    if perm is None or np.ndim(value) != len(perm):
        return value
    return np.ascontiguousarray(np.transpose(value, perm))


def _back(value: np.ndarray, shape: tuple | None, hint: tuple[int, ...] | None) -> np.ndarray:
    """``value`` (model layout) in the source's layout: the inverse of the first permutation that maps the
    source's ``shape`` onto it (the input's ``hint`` first, then identity, then the layout changes)."""
    rank = np.ndim(value)
    perms = [hint] if hint is not None and len(hint) == rank else []
    perms += [None, *LAYOUT_PERMS.get(rank, ())]
    for perm in perms:
        if shape is None:
            return value if perm is None or hint is None else np.transpose(value, np.argsort(perm))
        if len(shape) == rank and _fits(shape, value.shape, perm):
            return value if perm is None else np.transpose(value, np.argsort(perm))
    return value


def _shape_text(shape: tuple) -> str:
    return "x".join(str(d) if isinstance(d, int) else "?" for d in shape)


def for_source(runner: Runner, model: onnx.ModelProto, export: Export) -> Runner:
    """``runner`` (of ``model``, in its recorded source layout) fed and read like ``export``'s source model;
    ``runner`` itself when the two interfaces already agree."""
    match = interface_match(model, runner, export)
    if match.identity:
        return runner
    names = export.source_model.output_names if export.source_model else tuple(o.name for o in export.outputs)
    outputs = [replace(o, name=n) for o, n in zip(export.outputs, names)] if len(names) == len(export.outputs) \
        else [TensorSpec(n, ()) for n in names]
    return MatchedRunner(runner, match, outputs, export.inputs)


def interface_match(model: onnx.ModelProto, runner: Runner, export: Export) -> InterfaceMatch:
    """How ``export``'s source inputs feed ``runner`` (of ``model``, in its recorded source layout)."""
    return match_inputs(export.inputs, runner.inputs, nchw_model=_nchw_producer(model))


def _nchw_producer(model: onnx.ModelProto) -> bool:
    """A model PyTorch wrote (directly, or through onnxmend) takes channels first."""
    exporter = get_metadata(model, "onnxmend.exporter") or ""
    return model.producer_name == "pytorch" or exporter.startswith("torch")
