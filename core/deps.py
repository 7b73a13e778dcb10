"""The one optional-dependency loader: ``require("torch")`` imports a framework or says which extra to install.

Frameworks are imported only when a source, runner or command needs them, so the CLI starts fast and a
missing framework is one sentence (a :class:`~onnxmend.core.errors.MissingDependencyError`), never an
``ImportError`` traceback. TensorFlow is imported with its C++ start-up log quieted and with oneDNN on the
system allocator (a user's own ``TF_CPP_MIN_LOG_LEVEL`` / ``TF_ONEDNN_USE_SYSTEM_ALLOCATOR`` wins), and its
companions (Keras, tf2onnx) only once TensorFlow itself imports.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from onnxmend.core.errors import MissingDependencyError

# module -> (the package's name for people, the onnxmend extra that installs it)
EXTRAS: dict[str, tuple[str, str]] = {
    "torch": ("PyTorch", "torch"),
    "onnxscript": ("onnxscript", "torch"),
    "tensorflow": ("TensorFlow", "tf"),
    "keras": ("Keras", "tf"),
    "tf2onnx": ("tf2onnx", "tf"),
    "ai_edge_litert": ("ai-edge-litert", "tflite"),
    "paddle": ("PaddlePaddle", "paddle"),
    "paddle2onnx": ("paddle2onnx", "paddle"),
    "mindspore": ("MindSpore", "mindspore"),
    "ray": ("Ray", "ray"),
    "onnxsim": ("onnxsim", "dev"),
}
# Imported first, so that their own start-up is the quiet one.
_NEEDS_TENSORFLOW = ("keras", "tf2onnx")


def require(module: str) -> ModuleType:
    """Import ``module`` (a top-level name or a dotted submodule of one), or raise MissingDependencyError."""
    top = module.split(".")[0]
    if top == "tensorflow":
        # TF's C++ start-up chatter (oneDNN, CUDA probing) is noise for a CLI.
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        # oneDNN's own CPU allocator pools every freed tensor and never hands memory back: building
        # keras:VGG16 (0.55 GB of weights) held 1.97 GB with it, 1.13 GB with the system allocator.
        os.environ.setdefault("TF_ONEDNN_USE_SYSTEM_ALLOCATOR", "1")
    elif top in _NEEDS_TENSORFLOW:
        require("tensorflow")
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package, extra = EXTRAS.get(top, (top, "all"))
        raise MissingDependencyError(package, extra) from exc


def available(module: str) -> bool:
    """True when ``module`` can be imported here (without importing it)."""
    import importlib.util

    return importlib.util.find_spec(module.split(".")[0]) is not None
