"""Seeds 000/003: a small ViT block in torch — the LayerNorm/attention/GELU mix the norm fusions and the
quantizer meet in transformer exports.

Patch-embed conv (4x4, stride 4: 1x3x32x32 → 64 tokens of width 64) + position embedding, one pre-norm
encoder block (LayerNorm → multi-head attention written as MatMul/Softmax → residual; LayerNorm → MLP with
GELU → residual), final LayerNorm. Output: the token sequence ``[1, 64, 64]``. Weights are seeded torch
initialisations with random LayerNorm affines. This module imports torch; the registry imports it only
to build.
"""

from __future__ import annotations

import math

import torch

from onnxmend.models.weights import randomize_norm_affine, rng_for

IMAGE = 32
PATCH = 4
DIM = 64
HEADS = 4
MLP_RATIO = 4


class Attention(torch.nn.Module):
    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.heads, self.head_dim = heads, dim // heads
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.proj = torch.nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        scores = torch.matmul(q, k.transpose(-2, -1)) / math.sqrt(self.head_dim)
        context = torch.matmul(torch.softmax(scores, dim=-1), v)
        return self.proj(context.transpose(1, 2).reshape(batch, tokens, dim))


class EncoderBlock(torch.nn.Module):
    def __init__(self, dim: int, heads: int, mlp_ratio: int) -> None:
        super().__init__()
        self.norm1 = torch.nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, heads)
        self.norm2 = torch.nn.LayerNorm(dim, eps=1e-6)
        self.mlp = torch.nn.Sequential(
            torch.nn.Linear(dim, dim * mlp_ratio), torch.nn.GELU(), torch.nn.Linear(dim * mlp_ratio, dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class ViTBlock(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.patch_embed = torch.nn.Conv2d(3, DIM, PATCH, stride=PATCH)
        self.pos_embed = torch.nn.Parameter(torch.randn(1, (IMAGE // PATCH) ** 2, DIM) * 0.02)
        self.block = EncoderBlock(DIM, HEADS, MLP_RATIO)
        self.norm = torch.nn.LayerNorm(DIM, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed
        return self.norm(self.block(tokens))


def build(seed: int) -> ViTBlock:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = ViTBlock()
    randomize_norm_affine(model, rng_for("vit-block", seed))
    return model.eval()
