"""Cleanup passes: constant folding (also inside If/Loop bodies), identity/dropout removal, duplicate
initializers and nodes, shape-chain folding, Squeeze/Unsqueeze/Reshape chains, neutral x+0 / x*1, dead nodes.

The generic cleanup onnxsim and onnxslim do, so the fixed graph is never larger than theirs
(bench/peer_sizes.py). Non-goals: other algebra (x*0, x-x) and anything that needs runtime values.
"""
