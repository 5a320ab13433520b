"""Full definition of the LM lab's student: a tiny causal transformer, all of it in this single file.

nanoGPT-style (token embedding, pre-norm blocks of attention + MLP, final norm, tied output head)
with one change that makes *memory* a knob: each position attends only to the last ``context``
tokens (itself included), and positions are encoded by a learned per-head bias on the relative
offset, with no absolute position embedding. So the window is all the model can know about the
past: with ``context=1`` it is exactly a bigram model (its next token depends on the current token
only), with ``context >= prompt + answer length`` an ordinary causal transformer.

ids (B, T) LongTensor -> logits (B, T, V), like every model of the lab. Initialisation is seeded by
an explicit ``seed`` (a private ``torch.Generator``), never the global RNG.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["LMConfig", "TinyLM"]


@dataclass(frozen=True)
class LMConfig:
    """The student's shape. Every field is validated at construction."""

    vocab_size: int  # V: number of tokens (the teacher's vocabulary)
    context: int = 1  # tokens each position sees, itself included; 1 = bigram model (cannot remember the mode)
    n_layer: int = 1  # transformer blocks
    n_head: int = 2  # attention heads per block (must divide n_embd)
    n_embd: int = 32  # width of the residual stream

    def __post_init__(self) -> None:
        for name, low, high in (
            ("vocab_size", 2, 1 << 20),
            ("context", 1, 4096),
            ("n_layer", 1, 64),
            ("n_head", 1, 64),
            ("n_embd", 2, 8192),
        ):
            v = getattr(self, name)
            if not (isinstance(v, int) and not isinstance(v, bool) and low <= v <= high):
                raise ValueError(f"LMConfig.{name} must be an integer in [{low}, {high}], got {v!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"LMConfig.n_embd ({self.n_embd}) must be a multiple of n_head ({self.n_head})")


class CausalSelfAttention(nn.Module):
    """Multi-head attention over the last ``context`` positions, with learned relative-offset biases."""

    def __init__(self, cfg: LMConfig) -> None:
        super().__init__()
        self.n_head, self.context = cfg.n_head, cfg.context
        self.qkv = nn.Linear(cfg.n_embd, 3 * cfg.n_embd)
        self.proj = nn.Linear(cfg.n_embd, cfg.n_embd)
        self.offset_bias = nn.Parameter(torch.zeros(cfg.n_head, cfg.context))  # bias[h, i - j]

    def forward(self, x: Tensor) -> Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=2)
        q, k, v = (z.view(B, T, self.n_head, C // self.n_head).transpose(1, 2) for z in (q, k, v))  # (B, H, T, hd)
        pos = torch.arange(T, device=x.device)
        offset = pos[:, None] - pos[None, :]  # (T, T) i - j
        inside = (offset >= 0) & (offset < self.context)  # causal sliding window
        bias = self.offset_bias[:, offset.clamp(0, self.context - 1)]  # (H, T, T)
        mask = bias.masked_fill(~inside, -math.inf).to(q.dtype)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, T, hd)
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, cfg: LMConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(cfg.n_embd)
        self.attn = CausalSelfAttention(cfg)
        self.ln_2 = nn.LayerNorm(cfg.n_embd)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.n_embd, 4 * cfg.n_embd), nn.GELU(), nn.Linear(4 * cfg.n_embd, cfg.n_embd)
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.ln_1(x))
        return x + self.mlp(self.ln_2(x))


class TinyLM(nn.Module):
    """The student: ids (B, T) -> next-token logits (B, T, V).

    Example:
        >>> model = TinyLM(LMConfig(vocab_size=19, context=2), seed=0)
        >>> model(torch.zeros(3, 5, dtype=torch.long)).shape
        torch.Size([3, 5, 19])
    """

    def __init__(self, config: LMConfig, *, seed: int = 0) -> None:
        super().__init__()
        self.config = config
        with torch.random.fork_rng(devices=[]):  # torch's default inits draw from the global RNG: leave it as it was
            self.wte = nn.Embedding(config.vocab_size, config.n_embd)
            self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
            self.ln_f = nn.LayerNorm(config.n_embd)
            self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # weight tying, as in GPT-2 / nanoGPT
        self._init_weights(torch.Generator().manual_seed(int(seed)))

    @torch.no_grad()
    def _init_weights(self, generator: torch.Generator) -> None:
        # GPT-2 init: N(0, 0.02), residual projections scaled by 1/sqrt(2 n_layer); biases zero
        for name, p in self.named_parameters():
            if p.ndim < 2 or name.endswith("offset_bias"):  # LayerNorm gains 1; biases 0
                p.fill_(1.0 if ".ln_" in f".{name}" and name.endswith("weight") else 0.0)
                continue
            std = 0.02 / math.sqrt(2 * self.config.n_layer) if name.endswith(("proj.weight", "mlp.2.weight")) else 0.02
            p.normal_(0.0, std, generator=generator)

    def forward(self, ids: Tensor) -> Tensor:
        if ids.ndim != 2:
            raise ValueError(f"ids must have shape (B, T), got {tuple(ids.shape)}")
        x = self.wte(ids)  # (B, T, C)
        for block in self.blocks:
            x = block(x)
        return self.lm_head(self.ln_f(x))  # (B, T, V)
