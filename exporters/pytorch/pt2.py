"""``model.pt2`` (a ``torch.export`` program) as a source: loaded, wrapped, exported like a module."""

from __future__ import annotations

from pathlib import Path

from onnxmend.core.deps import require
from onnxmend.core.errors import BadSourceError
from onnxmend.exporters.base import Export
from onnxmend.exporters.options import ExportOptions
from onnxmend.exporters.pytorch.export import export_module


def export_pt2(source: str, options: ExportOptions) -> Export:
    torch = require("torch")
    path = Path(source)
    if not path.is_file():
        raise BadSourceError(f"{path} does not exist.")
    try:
        program = torch.export.load(str(path))
    except Exception as exc:
        raise BadSourceError(f"{path} is not a torch.export program ({type(exc).__name__}).") from exc
    module = program.module()
    examples = program.example_inputs[0] if program.example_inputs else None
    if examples and not options.inputs:
        module.example_inputs = tuple(examples)
    names = [s.arg.name for s in program.graph_signature.input_specs if s.kind.name == "USER_INPUT"]
    return export_module(_EvalWrapper(module), source, options, input_names=names or None)


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
