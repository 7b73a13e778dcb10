"""Mutation fuzzing of onnxmend's command line (``bench/fuzz.py`` drives it, ``tests/bench/test_fuzz.py``
runs a reduced form in CI): seed graphs from the zoo and a few hand-built ones (:mod:`.seeds`), mutated
inputs in named classes (:mod:`.mutations`), the real CLI run on each in a subprocess and its outcome
classified (:mod:`.outcome`), and the run summarised (:mod:`.harness`)."""
