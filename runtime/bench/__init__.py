"""Benchmarks: fair, interleaved timing of ONNX artifacts and the source framework.

``options`` (what to measure), ``engine`` (interleaved timing blocks on an injectable clock), ``cells``
(one (provider, batch) cell: sessions, subjects, agreement, memory), ``source`` (the source framework as a
subject, through its runner), ``results`` (statistics and ``bench.json``), ``chart`` (``bench.png``).
"""
