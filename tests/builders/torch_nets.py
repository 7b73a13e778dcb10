"""Small torch networks for the held-in peer comparison (tests/builders/peers.py). Imports torch: load it
only where torch is installed."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class SqueezeExcite(nn.Module):
    """Squeeze-excite in one of torch's three spellings: 0 ``view``, 1 ``[..., None, None]``, 2 ``keepdim``."""

    def __init__(self, channels: int, style: int, reduction: int = 4) -> None:
        super().__init__()
        self.style = style
        hidden = channels // reduction
        conv = style == 2
        self.reduce = nn.Conv2d(channels, hidden, 1) if conv else nn.Linear(channels, hidden)
        self.expand = nn.Conv2d(hidden, channels, 1) if conv else nn.Linear(hidden, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, _, _ = x.shape
        if self.style == 0:
            s = F.adaptive_avg_pool2d(x, 1).view(b, c)
            s = torch.sigmoid(self.expand(F.relu(self.reduce(s)))).view(b, c, 1, 1)
        elif self.style == 1:
            s = torch.sigmoid(self.expand(F.relu(self.reduce(x.mean((2, 3))))))[..., None, None]
        else:
            s = torch.sigmoid(self.expand(F.relu(self.reduce(x.mean((2, 3), keepdim=True)))))
        return x * s


class SqueezeExciteNet(nn.Module):
    """Stem, six depthwise blocks with squeeze-excite (two of each spelling), pooled linear head."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, channels, 3, 2, 1)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(channels, channels, 3, 1, 1, groups=channels), nn.BatchNorm2d(channels), nn.SiLU(),
                          SqueezeExcite(channels, i % 3), nn.Conv2d(channels, channels, 1))
            for i in range(6)
        )
        self.head = nn.Linear(channels, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for block in self.blocks:
            x = x + block(x)
        return self.head(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Block(nn.Module):
    """Pre-norm transformer block: fused qkv projection, heads split with ``view``, SDPA, GELU MLP."""

    def __init__(self, dim: int = 64, heads: int = 4) -> None:
        super().__init__()
        self.heads = heads
        self.qkv, self.out = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.fc1, self.fc2 = nn.Linear(dim, 4 * dim), nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (h.view(b, t, self.heads, d // self.heads).transpose(1, 2)
                   for h in self.qkv(self.norm1(x)).chunk(3, dim=-1))
        attended = F.scaled_dot_product_attention(q, k, v)
        x = x + self.out(attended.transpose(1, 2).reshape(b, t, d))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class Transformer(nn.Module):
    """Tokens [b, t, 16] → embedding, a cls token and positions sliced to the sequence → two blocks → head."""

    def __init__(self, dim: int = 64) -> None:
        super().__init__()
        self.embed = nn.Linear(16, dim)
        self.cls = nn.Parameter(torch.randn(1, 1, dim))
        self.positions = nn.Parameter(torch.randn(1, 65, dim) * 0.1)
        self.blocks = nn.ModuleList([Block(dim), Block(dim)])
        self.head = nn.Linear(dim, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1) + self.positions[:, : x.shape[1] + 1]
        for block in self.blocks:
            x = block(x)
        return self.head(x[:, 0])
