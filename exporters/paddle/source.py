"""The Paddle source, parent side: every export runs in the Paddle worker (:mod:`onnxmend.exporters.remote`).

Forms: ``file.py:factory`` (with ``--framework paddle``, or a file that imports paddle),
``paddle:pkg.module:factory``, a saved inference model (``model.json``/``model.pdmodel`` beside
``model.pdiparams``, or their folder) and Paddle zoo entries.
"""

from __future__ import annotations

from pathlib import Path

from onnxmend.core.errors import BadSourceError
from onnxmend.exporters.base import Export
from onnxmend.exporters.factories import paddle_model_files
from onnxmend.exporters.options import ExportOptions
from onnxmend.exporters.remote import remote_export

_CHILD = "onnxmend.exporters.paddle.child"


def export_paddle(source: str, options: ExportOptions) -> Export:
    if source.startswith("paddle:") or (":" in source and source.rsplit(":", 1)[0].endswith(".py")):
        return remote_export("paddle", "paddle-layer", f"{_CHILD}:export_factory", source, options=options)
    files = paddle_model_files(Path(source))
    if files is None:
        raise BadSourceError(f"{source} is not a Paddle inference model (a .json or .pdmodel beside its .pdiparams).")
    return remote_export("paddle", "paddle-program", f"{_CHILD}:export_program", source, options=options,
                         program=str(files[0]), params=str(files[1]))


def export_paddle_zoo(name: str, options: ExportOptions) -> Export:
    return remote_export("paddle", "paddle-layer", f"{_CHILD}:export_zoo", f"zoo:{name}", name=name, options=options)
