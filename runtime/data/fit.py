"""Loaded arrays checked against a model's inputs, and cast to what it takes: one sentence when they do not fit.

The rules, in order, for every sample:

- names: one array per input, named after it; a single-input model takes one array of any name. A
  missing input or an array that no input takes is refused, naming both sides;
- rank: an array has as many axes as its input;
- static dims: every fixed dim matches, except that an array whose first axis is a multiple of a fixed
  batch (10 rows for a batch-1 model) is split into that many samples, when every input fixes its batch;
- shared symbols: axes that share a name (``seq`` in ``input_ids`` and ``attention_mask``) agree;
- dtype: cast when no value changes: any number into a float input (finite values that stay finite),
  whole numbers within range into an integer input, 0/1 into a bool input; anything else is refused.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from onnxmend.core.errors import OnnxmendError
from onnxmend.core.specs import TensorSpec

Sample = dict[str, np.ndarray]


def shape_text(shape: Sequence[object]) -> str:
    return "x".join(str(d) if isinstance(d, int) else (str(d) if d else "?") for d in shape) or "scalar"


def fit_samples(samples: Sequence[Mapping[str, np.ndarray]], specs: Sequence[TensorSpec],
                origin: str) -> tuple[list[Sample], list[str]]:
    """``samples`` as ``specs`` take them (cast, batches split), and notes on what was done."""
    notes: list[str] = []
    fitted: list[Sample] = []
    for index, sample in enumerate(samples):
        where = origin if len(samples) == 1 else f"{origin} (sample {index})"
        named = _named(sample, specs, where, notes)
        arrays = {spec.name: _fit_array(named[spec.name], spec, where) for spec in specs}
        for part in _split(arrays, specs, where, notes):
            _check_symbols(part, specs, where)
            fitted.append(part)
    return fitted, list(dict.fromkeys(notes))


def _named(sample: Mapping[str, np.ndarray], specs: Sequence[TensorSpec], where: str, notes: list[str]) -> Sample:
    names = [s.name for s in specs]
    if len(specs) == 1 and len(sample) == 1 and names[0] not in sample:
        given = next(iter(sample))
        notes.append(f"the array '{given}' feeds input {names[0]}")
        return {names[0]: sample[given]}
    missing = [n for n in names if n not in sample]
    if missing:
        raise OnnxmendError(f"{where} has no array for input {missing[0]} (the model takes {', '.join(names)}; "
                            f"the file holds {', '.join(sample) or 'nothing'}).")
    extra = [k for k in sample if k not in names]
    if extra:
        raise OnnxmendError(f"{where} holds an array '{extra[0]}', which is not an input of the model "
                            f"(its inputs: {', '.join(names)}).")
    return dict(sample)


def _fit_array(array: np.ndarray, spec: TensorSpec, where: str) -> np.ndarray:
    what = f"{where}'s '{spec.name}'"
    wanted = shape_text(spec.shape)
    if array.ndim != len(spec.shape):
        hint = "; add the batch axis" if array.ndim == len(spec.shape) - 1 else ""
        raise OnnxmendError(f"{what} has {array.ndim} axes ({shape_text(array.shape)}), but input {spec.name} takes "
                            f"{len(spec.shape)} ({wanted}){hint}.")
    for axis, (dim, size) in enumerate(zip(spec.shape, array.shape)):
        if not isinstance(dim, int) or dim == size:
            continue
        if axis == 0 and dim > 0 and size % dim == 0 and size > 0:
            continue  # whole batches: split below
        raise OnnxmendError(f"{what} is {shape_text(array.shape)}, but input {spec.name} takes {wanted} "
                            f"(axis {axis} must be {dim}).")
    return cast(array, np.dtype(spec.dtype), f"{what} ({array.dtype})", f"input {spec.name} ({spec.dtype})")


def cast(array: np.ndarray, dtype: np.dtype, what: str, target: str) -> np.ndarray:
    """``array`` as ``dtype`` when no value changes; else one sentence."""
    if array.dtype == dtype:
        return array
    kind = array.dtype.kind
    if kind not in "biuf":
        raise OnnxmendError(f"{what} holds {array.dtype} values; {target} takes numbers.")
    if dtype.kind == "f":
        with np.errstate(over="ignore"):
            out = array.astype(dtype)
        if np.isfinite(array).all() and not np.isfinite(out).all():
            raise OnnxmendError(f"{what} holds values too large for {target}.")
        return out
    if dtype.kind == "b":
        if not np.isin(array, (0, 1)).all():
            raise OnnxmendError(f"{what} holds values other than 0 and 1; {target} takes booleans.")
        return array.astype(dtype)
    if kind == "f" and not (np.isfinite(array).all() and (array == np.round(array)).all()):
        raise OnnxmendError(f"{what} holds values that are not whole numbers; {target} takes integers.")
    info = np.iinfo(dtype)
    if array.size and (array.min() < info.min or array.max() > info.max):
        raise OnnxmendError(f"{what} holds values outside {info.min}..{info.max}; {target} cannot hold them.")
    return array.astype(dtype)


def _split(arrays: Sample, specs: Sequence[TensorSpec], where: str, notes: list[str]) -> list[Sample]:
    """Arrays holding k whole batches of a fixed-batch model, as k samples."""
    counts = {s.name: arrays[s.name].shape[0] // s.shape[0] for s in specs
              if s.shape and isinstance(s.shape[0], int) and s.shape[0] > 0}
    if not counts or set(counts.values()) == {1}:
        return [arrays]
    if len(counts) < len(specs) or len(set(counts.values())) > 1:
        shown = ", ".join(f"{s.name} {shape_text(arrays[s.name].shape)}" for s in specs)
        raise OnnxmendError(f"{where} does not hold the same number of whole batches for every input ({shown}).")
    k = next(iter(counts.values()))
    notes.append(f"split into samples of batch {next(iter(specs)).shape[0]}, the model's fixed batch")
    step = {s.name: s.shape[0] for s in specs}
    return [{n: a[i * step[n]:(i + 1) * step[n]] for n, a in arrays.items()} for i in range(k)]  # type: ignore[misc]


def _check_symbols(arrays: Mapping[str, np.ndarray], specs: Sequence[TensorSpec], where: str) -> None:
    seen: dict[str, tuple[str, int]] = {}
    for spec in specs:
        for axis, dim in enumerate(spec.shape):
            if not (isinstance(dim, str) and dim):
                continue
            size = int(arrays[spec.name].shape[axis])
            if dim in seen and seen[dim][1] != size:
                other, was = seen[dim]
                raise OnnxmendError(f"{where}'s '{other}' and '{spec.name}' disagree on dim '{dim}' ({was} vs {size}).")
            seen.setdefault(dim, (spec.name, size))
