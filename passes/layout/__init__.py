"""Layout passes: NHWC/NCHW without the Transposes exporters leave behind.

collapse-tensordot (tf2onnx's Reshape/MatMul/Reshape → one MatMul a Transpose can pass), io-layout (NHWC
graph inputs/outputs → NCHW on request), push-transposes (move Transposes through layout-agnostic ops until
they cancel). ``perm`` is the permutation algebra, ``transpose_handlers`` the table that decides how each
op runs under a Transpose, ``findings`` the Transpose census ``inspect`` shows.
"""
