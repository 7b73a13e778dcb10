"""Inputs and outputs as data: ``--load-inputs`` (``.npz``, ``.npy``, JSON, a folder of images) read and
checked against a model's interface, a statement of which inputs a command used (synthetic or loaded), and
``--save-outputs`` (``.npz`` or JSON).

- :mod:`~onnxmend.runtime.data.formats` reads and writes arrays (never unpickling anything);
- :mod:`~onnxmend.runtime.data.images` makes a folder of images into an image model's input;
- :mod:`~onnxmend.runtime.data.fit` checks arrays against input specs (names, rank, dims, dtype);
- :mod:`~onnxmend.runtime.data.loaded` ties them together: :func:`read_inputs`, :func:`fit_model`,
  :class:`LoadedInputs`, :class:`InputsUsed`;
- :mod:`~onnxmend.runtime.data.outputs` claims and writes the ``--save-outputs`` file.
"""

from onnxmend.runtime.data.loaded import (
    COMPARE_CAP,
    GATE_CAP,
    DataOptions,
    InputFile,
    InputsUsed,
    LoadedInputs,
    fit_model,
    read_inputs,
    shapes_of,
    synthetic_inputs,
    to_model_layout,
    to_source_layout,
)
from onnxmend.runtime.data.outputs import check_save_path, save_outputs

__all__ = [
    "COMPARE_CAP", "GATE_CAP", "DataOptions", "InputFile", "InputsUsed", "LoadedInputs", "check_save_path",
    "fit_model", "read_inputs", "save_outputs", "shapes_of", "synthetic_inputs", "to_model_layout",
    "to_source_layout",
]
