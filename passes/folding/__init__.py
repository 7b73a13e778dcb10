"""Folding passes: constant per-channel arithmetic moves into the weights of the op next to it.

fold-batch-norm (inference BN into Conv/ConvTranspose/Gemm/MatMul, or Mul+Add), fold-conv-affine (Mul/Add
after a Conv), fold-conv-input-affine (Mul/Add before a Conv). ``channel_affine`` holds their shared
numerics.
"""
