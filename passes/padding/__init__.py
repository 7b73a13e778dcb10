"""Padding passes: make every pad explicit, fold Pads into the ops that read them, and the reverse.

fold-dynamic-pad (run-time pad chains → constants), resolve-auto-pad (``auto_pad`` → ``pads``), fold-pad
(Pad → Conv/pool ``pads``), split-asymmetric-pads (the portable preset's inverse of fold-pad).
``pad_spec`` reads a Pad into full-rank form,
``non_negative`` proves a MaxPool input is never negative.
"""
