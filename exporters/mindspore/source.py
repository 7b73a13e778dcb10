"""The MindSpore source, parent side: every export runs in the MindSpore worker (:mod:`onnxmend.exporters.remote`).

Forms: ``file.py:factory`` (with ``--framework mindspore``, or a file that imports mindspore),
``mindspore:pkg.module:factory`` and MindSpore zoo entries. MindSpore compiles a Cell from its source
file, so a Cell defined in an interactive session cannot be exported.
"""

from __future__ import annotations

from onnxmend.exporters.base import Export
from onnxmend.exporters.options import ExportOptions
from onnxmend.exporters.remote import remote_export

_CHILD = "onnxmend.exporters.mindspore.child"


def export_mindspore(source: str, options: ExportOptions) -> Export:
    return remote_export("mindspore", "mindspore-cell", f"{_CHILD}:export_factory", source, options=options)


def export_mindspore_zoo(name: str, options: ExportOptions) -> Export:
    return remote_export("mindspore", "mindspore-cell", f"{_CHILD}:export_zoo", f"zoo:{name}", name=name,
                         options=options)
