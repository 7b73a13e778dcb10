"""Loading a PyTorch model factory: ``torch:pkg.module:factory`` or ``path/file.py:factory``.

Importing the module runs its code; that is what a factory source means.
"""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from typing import Any

from onnxmend.core.deps import require
from onnxmend.core.errors import BadSourceError


def load_factory(source: str) -> Any:
    """Resolve ``torch:pkg.module:factory`` or ``path/file.py:factory`` to the factory callable."""
    if source.startswith("torch:"):
        parts = source[len("torch:"):].rsplit(":", 1)
        if len(parts) != 2 or not all(parts):
            raise BadSourceError(f"{source!r} should look like torch:package.module:factory.")
        module_name, attr = parts
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise BadSourceError(f"Cannot import module {module_name!r} ({exc}).") from exc
    else:
        path_text, attr = source.rsplit(":", 1)
        path = Path(path_text)
        if not path.is_file():
            raise BadSourceError(f"{path} does not exist.")
        spec = importlib.util.spec_from_file_location(f"onnxmend_user_{path.stem}", path)
        if spec is None or spec.loader is None:
            raise BadSourceError(f"{path} is not a Python file onnxmend can import.")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise BadSourceError(f"Importing {path} failed: {type(exc).__name__}: {exc}") from exc
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise BadSourceError(f"{module.__name__} has no callable named {attr!r}.")
    return factory


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
