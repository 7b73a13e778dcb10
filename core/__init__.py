"""The ground floor: what every other floor may import and what imports nothing of onnxmend but itself.

- ``errors``: the exceptions a user can meet, each one sentence, and :func:`~onnxmend.core.errors.first_line`.
- ``fileio``: reading models with clear errors; every output written atomically.
- ``specs``: :class:`~onnxmend.core.specs.TensorSpec`, the I/O of a model, read from a graph or given by an exporter.
- ``interface``: the interface changes passes record in a model's metadata, and feeding/reading across them.
- ``graph``: onnx-graphsurgeon helpers every pass family shares (the one constant reader, the one
  consumer-rewiring helper) and small ModelProto facts (op histogram, opset).
- ``deps``: the one optional-dependency loader (``require("torch")``).
- ``table``: one table model that the terminal and Markdown renderers both draw.

Nothing here imports a framework, onnxruntime, or any other onnxmend floor.
"""
