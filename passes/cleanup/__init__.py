"""Cleanup passes: constant folding, identity/dropout removal, duplicate initializers, dead nodes.

Non-goals: algebraic simplification (x*1, x+0) and anything that needs runtime values.
"""
