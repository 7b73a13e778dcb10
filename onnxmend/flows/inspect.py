"""``inspect``: what is in a graph and what each pass of a preset would change in it."""

from __future__ import annotations

from pathlib import Path

from onnxmend.core.fileio import load_model
from onnxmend.runtime.inspect import Inspection, guess_framework, inspect_model


def inspect(model: str | Path, framework: str = "auto", preset: str = "fix") -> Inspection:
    """Op histogram, interface, facts, and the candidates of every pass in ``preset`` (``none``: no passes)."""
    onnx_model = load_model(model)
    chosen = guess_framework(onnx_model) if framework == "auto" else framework
    return inspect_model(onnx_model, model, chosen, preset=None if preset == "none" else preset)
