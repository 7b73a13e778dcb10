"""PaddlePaddle sources: a ``paddle.nn.Layer`` factory, a saved inference model, and Paddle zoo entries.

:mod:`.source` is the parent side (it starts the Paddle worker and nothing else); :mod:`.child` runs in
that worker: ``paddle.jit.save`` for a Layer, then paddle2onnx on the saved program.
"""
