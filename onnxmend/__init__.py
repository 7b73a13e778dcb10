"""onnxmend: export models to ONNX, fix what frameworks disagree on, prove parity with the source."""

from __future__ import annotations

__version__ = "0.1.0"
