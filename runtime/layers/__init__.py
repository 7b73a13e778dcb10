"""Per-layer blame: which source layer is the first whose output the ONNX graph no longer computes.

- ``graph``: the source model as layers in network order (``keras_graph``: Keras operations by name;
  ``torch_graph``: modules by path, ordered by one traced forward pass; ``onnx_graph``: an ONNX source's
  nodes), each with its weights' shapes and its configuration as comparable *facts* (strides, pads,
  epsilon, normalized axes, …).
- ``mapping``: the ONNX tensors that answer for each source layer, from node provenance
  (:mod:`onnxmend.core.provenance`), with the layers a fused or folded node answers for grouped.
- ``align``: two ONNX graphs lined up by structure (weighted ops and their weight shapes, the ops between
  them), for ports whose names mean nothing to each other.
- ``layout``: each ONNX tensor's layout relative to the source, from the recorded interface and Transposes.
- ``probe``: capture and compare in chunks bounded by a memory budget, or by bisection; counts the runs.
- ``facts``/``weights``/``explain``: ONNX attributes as facts, weights compared through permutations, and
  the first failing layer explained beside its source config.
- ``blame``/``diff``: ``validate --layers`` against the source framework and ``diff`` between two ports.
- ``report``/``plot``: report.json, report.md and the error-vs-depth PNG.
"""
