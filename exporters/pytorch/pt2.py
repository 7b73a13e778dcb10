"""``model.pt2`` (a ``torch.export`` program) and pickled ``model.pt``/``.pth`` modules as sources: checked
that loading runs no code from the file (:mod:`~onnxmend.exporters.pytorch.safety`) unless the user trusts
it, loaded, wrapped, exported like a module."""

from __future__ import annotations

from pathlib import Path

from onnxmend.core.deps import require
from onnxmend.core.errors import BadSourceError, first_line
from onnxmend.exporters.base import Export
from onnxmend.exporters.options import ExportOptions
from onnxmend.exporters.pytorch.export import export_module
from onnxmend.exporters.pytorch.safety import check_pt2, load_weights_only


def export_pt2(source: str, options: ExportOptions) -> Export:
    torch = require("torch")
    path = Path(source)
    if not path.is_file():
        raise BadSourceError(f"{path} does not exist.")
    if not options.trust_source:
        check_pt2(path)
    try:
        program = torch.export.load(str(path))
    except Exception as exc:
        raise BadSourceError(f"{path} is not a torch.export program ({type(exc).__name__}: {first_line(exc, 200)}).") from exc
    module = program.module()
    examples = program.example_inputs[0] if program.example_inputs else None
    if examples and not options.inputs:
        module.example_inputs = tuple(examples)
    names = [s.arg.name for s in program.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
    return export_module(_EvalWrapper(module), source, options, input_names=names or None)


def export_pickled_module(source: str, options: ExportOptions) -> Export:
    """A ``torch.save``-d ``nn.Module``: unpickling it runs code, so only with ``--trust-source``."""
    torch = require("torch")
    path = Path(source)
    if not path.is_file():
        raise BadSourceError(f"{path} does not exist.")
    if not options.trust_source:
        loaded = load_weights_only(path)  # a state dict at most: refuses anything that would run code
        what = "a state dict" if isinstance(loaded, dict) else f"a {type(loaded).__name__}"
        raise BadSourceError(f"{path} holds {what}, not a model; give the model's factory (file.py:factory) "
                             "and load these weights there.")
    module = torch.load(str(path), weights_only=False, map_location="cpu")
    if not isinstance(module, torch.nn.Module):
        raise BadSourceError(f"{path} holds a {type(module).__name__}, not a torch.nn.Module.")
    return export_module(module, source, options)


def _EvalWrapper(module):  # noqa: N802  (a factory that looks like a class to its callers)
    """``ExportedProgram.module()`` refuses ``.eval()``; wrap it so export_module can treat it like any module."""
    torch = require("torch")

    class Wrapped(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = module
            self.example_inputs = getattr(module, "example_inputs", None)

        def forward(self, *args):
            return self.inner(*args)

        def eval(self):  # the exported module is already in inference form
            return self

    return Wrapped()
