"""Norm passes: fuse decomposed LayerNorm/GroupNorm, respell the ones that must stay decomposed, decompose
fused norms for targets without them.

fuse-layer-norm, fuse-group-norm, respell-layer-norm, decompose-norms. ``moments`` matches a norm's
statistics, ``layer_norm_match``/``group_norm_match`` the whole norm, ``emitter`` writes the primitive
spelling, ``epsilons`` lists every norm's epsilon against the source framework's default.
"""
