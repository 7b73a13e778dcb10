"""Everything that executes a model.

``session`` (onnxruntime sessions: CUDA when it works, CPU otherwise, said out loud), ``runners`` (one Runner
protocol for onnxruntime, torch, Keras/TF and ONNX sources, named intermediates on request, the layout
adapt/restore in one wrapper), ``compare`` (one Comparator with pluggable metrics), ``inputs`` (seeded
inputs), ``gate`` (the pass manager's numeric gate), ``validate`` (parity against the source), ``inspect``
(facts and pass candidates), ``quantize`` (int8 artifacts), ``bench`` (interleaved timing), ``machine``
(CPU/GPU facts, memory probe).
"""
