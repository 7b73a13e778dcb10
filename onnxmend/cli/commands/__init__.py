"""One module per CLI command; each exposes a click ``command`` that onnxmend.cli registers."""
