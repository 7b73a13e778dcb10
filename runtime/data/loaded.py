"""``--load-inputs``: a file read once (:func:`read_inputs`), then matched to a model (:meth:`InputFile.fit`,
:func:`fit_model`) into :class:`LoadedInputs`, in the layout the source model takes — the currency of every
comparison in onnxmend (runners adapt it to each ONNX graph's own interface).

Arrays are given as the model named on the command line takes them: for ``convert``, the SOURCE's inputs;
for an ONNX file, the file's own inputs. When onnxmend changed that file's interface (an NHWC input made
NCHW, recorded in its metadata), arrays in the source's original layout are accepted as well.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import onnx

from onnxmend.core.errors import OnnxmendError
from onnxmend.core.interface import read_interface, source_layout_specs
from onnxmend.core.specs import TensorSpec, specs_from_model
from onnxmend.runtime.data.fit import Sample, fit_samples, shape_text
from onnxmend.runtime.data.formats import ARRAY_SUFFIXES, read_arrays
from onnxmend.runtime.data.images import ImageInput, choose_preprocess, list_images, read_images

# At most this many samples are compared (validate, the int8 gate) or checked by the pass gate, in file
# order; the report says how many of how many. A rewrite is exact or not: more samples in the gate add
# time, not confidence.
COMPARE_CAP = 256
GATE_CAP = 16


@dataclass(frozen=True)
class DataOptions:
    """What the user asked for: ``--load-inputs``, ``--image-preprocess`` and ``--save-outputs``."""

    load: Path | None = None
    preprocess: str | None = None
    save: Path | None = None


@dataclass(frozen=True)
class InputsUsed:
    """Which inputs a command used, as the terminal and every report state it."""

    kind: str  # "synthetic" or "loaded"
    summary: str  # "synthetic (seed 0, sizes x:1x3x8x8)", "loaded from in.npz (3 samples)"
    path: str | None = None
    samples: int = 0
    compared: int = 0
    sizes: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, object]:
        return {"kind": self.kind, "summary": self.summary, "path": self.path, "samples": self.samples,
                "compared": self.compared, "sizes": list(self.sizes), "notes": list(self.notes)}


def shapes_of(feeds: Mapping[str, np.ndarray]) -> dict[str, tuple[int, ...]]:
    return {name: tuple(np.shape(value)) for name, value in feeds.items()}


def synthetic_inputs(seeds: Sequence[int], shapes: Sequence[Mapping[str, Sequence[int]]]) -> InputsUsed:
    """``synthetic (seed 0, sizes x:1x3x8x8; x:3x3x8x8)``: the seeds and every distinct set of shapes."""
    sizes = tuple(dict.fromkeys(", ".join(f"{n}:{shape_text(s)}" for n, s in one.items()) for one in shapes))
    seed = f"seed {seeds[0]}" if len(set(seeds)) == 1 else f"seeds {seeds[0]}..{seeds[-1]}"
    batches = f", {len(shapes)} batches" if len(shapes) > len(sizes) else ""
    summary = f"synthetic ({seed}{batches}, sizes {'; '.join(sizes) or 'none'})"
    return InputsUsed("synthetic", summary, samples=len(shapes), compared=len(shapes), sizes=sizes)


@dataclass
class LoadedInputs:
    """Samples from a ``--load-inputs`` file, fitted to a model, in the source's layout."""

    path: Path
    kind: str  # "npz", "npy", "json", "images"
    samples: list[Sample]
    how: str = ""  # how images were made into arrays
    notes: list[str] = field(default_factory=list)

    def take(self, cap: int = COMPARE_CAP) -> list[Sample]:
        return self.samples[:cap]

    def used(self, compared: int | None = None, verb: str = "compared") -> InputsUsed:
        """The statement for reports: ``compared`` of the samples were used (all by default)."""
        count = len(self.samples) if compared is None else min(compared, len(self.samples))
        unit = "batch" if self.kind == "images" else "sample"
        parts = [self.how or f"{len(self.samples)} {unit}{'s' if len(self.samples) != 1 else ''}", *self.notes]
        if count < len(self.samples):
            parts.append(f"the first {unit} {verb}" if count == 1 else f"the first {count} {unit}es {verb}"
                         if unit == "batch" else f"the first {count} samples {verb}")
        summary = f"loaded from {self.path}{'/' if self.kind == 'images' else ''} ({'; '.join(parts)})"
        sizes = tuple(dict.fromkeys(", ".join(f"{n}:{shape_text(v.shape)}" for n, v in s.items()) for s in self.samples))
        return InputsUsed("loaded", summary, str(self.path), len(self.samples), count, sizes[:8], tuple(self.notes))


@dataclass(frozen=True)
class InputFile:
    """A ``--load-inputs`` file or folder, read but not yet matched to a model."""

    path: Path
    kind: str
    samples: tuple[Mapping[str, np.ndarray], ...] = ()
    images: tuple[Path, ...] = ()
    preprocess: str | None = None

    def fit(self, specs: Sequence[TensorSpec]) -> LoadedInputs:
        """The samples as ``specs`` take them (same layout), or one sentence why they do not fit."""
        if self.kind == "images":
            target = ImageInput.of(specs)
            samples, how = read_images(self.images, target, choose_preprocess(target, self.preprocess))
            return LoadedInputs(self.path, self.kind, samples, how)
        samples, notes = fit_samples(self.samples, specs, str(self.path))
        return LoadedInputs(self.path, self.kind, samples, notes=notes)


def read_inputs(path: str | Path, preprocess: str | None = None) -> InputFile:
    """Read ``path`` (checked before any slow work); the file is only ever read."""
    path = Path(path)
    if not path.exists():
        raise OnnxmendError(f"{path} does not exist; --load-inputs takes an .npz, .npy or .json file or a folder of images.")
    if path.is_dir():
        return InputFile(path, "images", images=tuple(list_images(path)), preprocess=preprocess)
    if preprocess is not None:
        raise OnnxmendError(f"--image-preprocess applies to a folder of images, and {path} is a file.")
    if path.suffix.lower() not in ARRAY_SUFFIXES:
        raise OnnxmendError(f"{path}: --load-inputs takes an .npz, .npy or .json file or a folder of images.")
    if not path.is_file():
        raise OnnxmendError(f"{path} is not a regular file (a pipe or a device).")
    return InputFile(path, path.suffix.lower()[1:], tuple(read_arrays(path)))


def fit_model(inputs: InputFile, model: onnx.ModelProto) -> LoadedInputs:
    """Fit to an ONNX file's own inputs (or, when onnxmend changed them, the source's), in the source's layout."""
    own = specs_from_model(model)
    try:
        loaded = inputs.fit(own)
    except OnnxmendError as first:
        original = source_layout_specs(model)
        if [s.shape for s in original] == [s.shape for s in own]:
            raise
        try:
            loaded = inputs.fit(original)
        except OnnxmendError:
            raise first from None
        loaded.notes.append("given in the source's layout: " + ", ".join(f"{s.name} {shape_text(s.shape)}"
                                                                       for s in original))
        return loaded
    loaded.samples = [to_source_layout(s, model) for s in loaded.samples]
    return loaded


def to_source_layout(feeds: Mapping[str, np.ndarray], model: onnx.ModelProto) -> Sample:
    """Inputs as ``model`` takes them, turned back into the source's layout (undoing recorded changes)."""
    interface = read_interface(model)
    out = {}
    for name, value in feeds.items():
        change = interface.get(name)
        if change and change["kind"] == "input" and np.ndim(value) == len(change["perm"]):  # type: ignore[arg-type]
            value = np.ascontiguousarray(np.transpose(value, np.argsort(change["perm"])))  # type: ignore[arg-type]
        out[name] = value
    return out


def to_model_layout(outputs: Mapping[str, np.ndarray], model: onnx.ModelProto) -> Sample:
    """Outputs restored to the source's layout, turned back into what ``model`` itself returns."""
    interface = read_interface(model)
    out = {}
    for name, value in outputs.items():
        change = interface.get(name)
        if change and change["kind"] == "output" and np.ndim(value) == len(change["perm"]):  # type: ignore[arg-type]
            value = np.transpose(value, change["perm"])  # type: ignore[arg-type]
        out[name] = np.asarray(value)
    return out
