"""``--save-outputs FILE``: the outputs a command computed, one group per thing that ran.

Keys are ``<group>/<output>``: ``onnx/`` (the ONNX model, as onnxruntime returns its outputs) and
``source/`` (the source model in its own framework) for convert and validate; ``onnx/`` (the fixed
graph) and ``source/`` (the input graph) for fix; ``fp32/``, ``int8/`` and ``source/`` for quantize; one
group per subject (``model/``, ``model.int8/``, ``source/``) for bench. Several samples are stored as
``sample<i>/<group>/<output>`` in an .npz and as a list in JSON. The header (the JSON's ``onnxmend`` key,
the .npz's archive comment) says which model each group is and which inputs were used.

The file is claimed before any slow work (a user's file is never replaced without ``--force``; the
``--load-inputs`` file and the model are never replaced at all) and written atomically at the end.
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from onnxmend.core.errors import OnnxmendError
from onnxmend.core.outputs import claim_file
from onnxmend.runtime.data.formats import write_arrays
from onnxmend.runtime.data.loaded import DataOptions, InputsUsed

SAVE_SUFFIXES = (".npz", ".json")
Runs = Sequence[Mapping[str, np.ndarray]]


def check_save_path(options: DataOptions, force: bool = False, protect: Sequence[str | Path] = ()) -> None:
    """Refuse, before anything runs, a ``--save-outputs`` path that cannot or must not be written."""
    path = options.save
    if path is None:
        return
    path = Path(path)
    if path.suffix.lower() not in SAVE_SUFFIXES:
        raise OnnxmendError(f"--save-outputs {path}: give a file name ending in .npz or .json.")
    for other in [options.load, *protect]:
        if other is not None and Path(other).resolve() == path.resolve():
            raise OnnxmendError(f"--save-outputs {path} is an input of this command; onnxmend never modifies its "
                                "input. Choose another file name.")
    claim_file(path, force, option="--save-outputs")


def save_outputs(path: str | Path, groups: Mapping[str, Runs], what: Mapping[str, str],
                 inputs: InputsUsed) -> Path:
    """Write every group's runs (one dict of outputs per sample) to ``path``, with the header."""
    counts = {len(runs) for runs in groups.values()}
    if len(counts) != 1 or not counts.pop():
        raise OnnxmendError("There are no outputs to save: nothing ran on every sample.")
    samples = [{f"{group}/{name}": np.asarray(value) for group, runs in groups.items() for name, value in runs[i].items()}
               for i in range(len(next(iter(groups.values()))))]
    header = {"version": _version(), "inputs": inputs.summary, "groups": dict(what), "samples": len(samples)}
    return write_arrays(Path(path), samples, header)


def _version() -> str:
    try:
        return metadata.version("onnxmend")
    except metadata.PackageNotFoundError:
        return "unknown"
