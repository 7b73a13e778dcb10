"""Seed 003: a BERT-style encoder in torch, the model the dynamic-quantization work measures.

Token ids ``[1, 128]`` (int64, vocabulary 8000) → word + position embeddings → LayerNorm → 4 post-norm
encoder layers (hidden 512, 8 heads with attention as MatMul/Softmax, intermediate 2048 with GELU) →
``last_hidden_state [1, 128, 512]`` and a tanh pooler over the first token, ``pooled [1, 512]``. Weights
follow BERT's initialisation (normal, std 0.02) with random LayerNorm affines. This module imports torch;
the registry imports it only to build.
"""

from __future__ import annotations

import math

import torch

from onnxmend.models.weights import randomize_norm_affine, rng_for

VOCAB = 8000
SEQ = 128
HIDDEN = 512
LAYERS = 4
HEADS = 8
INTERMEDIATE = 2048
LN_EPS = 1e-12


class SelfAttention(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head_dim = HIDDEN // HEADS
        self.query = torch.nn.Linear(HIDDEN, HIDDEN)
        self.key = torch.nn.Linear(HIDDEN, HIDDEN)
        self.value = torch.nn.Linear(HIDDEN, HIDDEN)
        self.output = torch.nn.Linear(HIDDEN, HIDDEN)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        batch, tokens, _ = x.shape
        return x.reshape(batch, tokens, HEADS, self.head_dim).transpose(1, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._heads(self.query(x)), self._heads(self.key(x)), self._heads(self.value(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(self.head_dim)
        context = torch.matmul(torch.softmax(scores, dim=-1), v)
        return self.output(context.transpose(1, 2).reshape(x.shape))


class EncoderLayer(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.attention = SelfAttention()
        self.attention_norm = torch.nn.LayerNorm(HIDDEN, eps=LN_EPS)
        self.intermediate = torch.nn.Linear(HIDDEN, INTERMEDIATE)
        self.gelu = torch.nn.GELU()
        self.output = torch.nn.Linear(INTERMEDIATE, HIDDEN)
        self.output_norm = torch.nn.LayerNorm(HIDDEN, eps=LN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.attention_norm(x + self.attention(x))
        return self.output_norm(x + self.output(self.gelu(self.intermediate(x))))


class BertEncoder(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.word_embeddings = torch.nn.Embedding(VOCAB, HIDDEN)
        self.position_embeddings = torch.nn.Embedding(SEQ, HIDDEN)
        self.embedding_norm = torch.nn.LayerNorm(HIDDEN, eps=LN_EPS)
        self.layers = torch.nn.ModuleList(EncoderLayer() for _ in range(LAYERS))
        self.pooler = torch.nn.Linear(HIDDEN, HIDDEN)
        self.register_buffer("position_ids", torch.arange(SEQ).unsqueeze(0), persistent=False)

    def forward(self, input_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        positions = self.position_ids[:, : input_ids.shape[1]]
        x = self.embedding_norm(self.word_embeddings(input_ids) + self.position_embeddings(positions))
        for layer in self.layers:
            x = layer(x)
        return x, torch.tanh(self.pooler(x[:, 0]))


def _bert_init(module: torch.nn.Module) -> None:
    if isinstance(module, (torch.nn.Linear, torch.nn.Embedding)):
        torch.nn.init.normal_(module.weight, std=0.02)
    if isinstance(module, torch.nn.Linear):
        torch.nn.init.zeros_(module.bias)


def build(seed: int) -> BertEncoder:
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = BertEncoder()
        model.apply(_bert_init)
    randomize_norm_affine(model, rng_for("bert-encoder", seed))
    return model.eval()
