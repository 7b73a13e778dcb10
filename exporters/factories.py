"""Which framework a source names, decided without importing any framework, and loading a factory.

``file.py:factory`` may build a torch ``nn.Module``, a ``paddle.nn.Layer`` or a MindSpore ``nn.Cell``.
``--framework`` says which; without it the file's own top-level imports do (``import paddle``,
``from mindspore import nn``), read as text so that deciding never runs the file, and never imports a
framework into a process that another one already holds. A file that imports none of them is a torch
factory (its model may come from a package that imports torch); one that imports several must say.

A Paddle inference model is a ``.json`` (PIR, Paddle 3) or ``.pdmodel`` program beside a ``.pdiparams``
file of the same stem, or a folder holding one such pair.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
import sys
from pathlib import Path
from typing import Any, Callable

from onnxmend.core.errors import BadSourceError, OnnxmendError

FACTORY_FRAMEWORKS = ("torch", "paddle", "mindspore")
_IMPORT = re.compile(r"^\s*(?:import|from)\s+(torch|paddle|mindspore)\b", re.MULTILINE)


def factory_framework(path_text: str, framework: str | None = None) -> str:
    """The framework of the factory file ``path_text``: ``framework`` when given, else from its imports."""
    if framework not in (None, "auto"):
        if framework not in FACTORY_FRAMEWORKS:
            raise OnnxmendError(f"--framework {framework} does not build factories; use one of {', '.join(FACTORY_FRAMEWORKS)}.")
        return framework
    path = Path(path_text)
    if not path.is_file():
        return "torch"  # the torch loader says the file does not exist
    found = sorted(set(_IMPORT.findall(path.read_text(errors="replace"))))
    if len(found) > 1:
        raise OnnxmendError(
            f"{path} imports {' and '.join(found)}; say which framework its factory builds with --framework."
        )
    return found[0] if found else "torch"


def paddle_model_files(path: Path) -> tuple[Path, Path] | None:
    """(program, parameters) of the Paddle inference model at ``path`` (a file or its folder), else None."""
    if path.is_file():
        params = path.with_suffix(".pdiparams")
        return (path, params) if path.suffix in (".json", ".pdmodel") and params.is_file() else None
    if path.is_dir():
        pairs = [(p, p.with_suffix(".pdiparams")) for p in sorted(path.iterdir())
                 if p.suffix in (".json", ".pdmodel") and p.with_suffix(".pdiparams").is_file()]
        return pairs[0] if len(pairs) == 1 else None
    return None


def load_factory(source: str) -> Callable[..., Any]:
    """Resolve ``FRAMEWORK:pkg.module:factory`` or ``path/file.py:factory`` to the factory callable.

    Importing the module runs its code; that is what a factory source means.
    """
    prefix = next((f"{f}:" for f in FACTORY_FRAMEWORKS if source.startswith(f"{f}:")), None)
    if prefix is not None:
        parts = source[len(prefix):].rsplit(":", 1)
        if len(parts) != 2 or not all(parts):
            raise BadSourceError(f"{source!r} should look like {prefix}package.module:factory.")
        module_name, attr = parts
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise BadSourceError(f"Cannot import module {module_name!r} ({exc}).") from exc
    else:
        path_text, attr = source.rsplit(":", 1)
        module = _import_file(Path(path_text))
    factory = getattr(module, attr, None)
    if factory is None or not callable(factory):
        raise BadSourceError(f"{module.__name__} has no callable named {attr!r}.")
    return factory


def _import_file(path: Path) -> Any:
    if not path.is_file():
        raise BadSourceError(f"{path} does not exist.")
    spec = importlib.util.spec_from_file_location(f"onnxmend_user_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise BadSourceError(f"{path} is not a Python file onnxmend can import.")
    module = importlib.util.module_from_spec(spec)
    # Registered under its name, as an import would: MindSpore's graph compiler looks the module up.
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        sys.modules.pop(spec.name, None)
        raise BadSourceError(f"Importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return module
