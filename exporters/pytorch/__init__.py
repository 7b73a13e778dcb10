"""PyTorch sources: ``torch:pkg.module:factory``, ``path/file.py:factory`` (``factory``), ``model.pt2``
(``pt2``), exported with torch.onnx's dynamo or legacy exporter (``export``)."""
