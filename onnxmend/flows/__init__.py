"""Flows: what each command does, as functions. They orchestrate exporters, passes and runtime; they
compute nothing themselves. ``convert``, ``fix``, ``validate``, ``quantize``, ``bench`` and ``inspect`` are
what the CLI calls and what ``import onnxmend`` exposes; ``tables`` and ``convert_report`` turn their
results into the tables and Markdown people read.
"""
