"""Graph rewrites, one pass per module, grouped by the family of problem they fix.

======================  =====================================================================
``infra/``              the Pass interface, matching helpers, the manager, catalogue and presets
``cleanup/``            fold-constants, remove-identity, dedupe-initializers, eliminate-dead-nodes
``padding/``            fold-dynamic-pad, resolve-auto-pad, fold-pad, split-asymmetric-pads
``layout/``             collapse-tensordot, io-layout, push-transposes
``folding/``            fold-batch-norm, fold-conv-affine, fold-conv-input-affine
``norms/``              fuse-layer-norm, fuse-group-norm, respell-layer-norm, decompose-norms
``activations/``        fuse-gelu
======================  =====================================================================

A pass ``fold-pad`` lives in ``passes/padding/fold_pad.py`` and is tested in
``tests/passes/padding/test_fold_pad.py``. Passes import only ``onnxmend.core`` and each other; they never
run a model (the numeric gate is handed to the manager by the flow).
"""
