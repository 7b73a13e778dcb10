"""Loading a PyTorch model factory: ``torch:pkg.module:factory`` or ``path/file.py:factory``.

Importing the module runs its code; that is what a factory source means.
"""

from __future__ import annotations

from typing import Any

from onnxmend.core.deps import require
from onnxmend.core.errors import BadSourceError
from onnxmend.exporters import factories


def load_factory(source: str) -> Any:
    """Resolve ``torch:pkg.module:factory`` or ``path/file.py:factory`` to the factory callable."""
    return factories.load_factory(source)


def build_module(source: str) -> Any:
    torch = require("torch")
    factory = load_factory(source)
    try:
        module = factory()
    except Exception as exc:
        raise BadSourceError(f"The factory in {source!r} raised {type(exc).__name__}: {exc}") from exc
    if not isinstance(module, torch.nn.Module):
        raise BadSourceError(
            f"The factory in {source!r} returned a {type(module).__name__}, not a torch.nn.Module."
        )
    return module
