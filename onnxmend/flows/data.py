"""What every flow does with ``--load-inputs``/``--save-outputs`` before its slow work: read the inputs
file (a bad file fails before an export) and claim the outputs file (a user's file is refused before
anything runs). The reading, checking and writing are runtime's (:mod:`onnxmend.runtime.data`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from onnxmend.core.errors import OnnxmendError
from onnxmend.runtime.data import DataOptions, InputFile, check_save_path, read_inputs


def prepare(data: DataOptions, force: bool = False, protect: Sequence[str | Path] = ()) -> InputFile | None:
    """The ``--load-inputs`` file, read (None without one), after checking the ``--save-outputs`` path."""
    if data.preprocess is not None and data.load is None:
        raise OnnxmendError("--image-preprocess says how a folder of images given with --load-inputs is read; "
                            "add --load-inputs FOLDER or drop it.")
    check_save_path(data, force, protect)
    return read_inputs(data.load, data.preprocess) if data.load is not None else None
