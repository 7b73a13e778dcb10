"""Activation passes: fuse-gelu (decomposed GELU spellings → one Gelu node)."""
