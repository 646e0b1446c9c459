"""A small Vision Transformer (ViT, Dosovitskiy et al. 2020), alone (``"vit"``) and behind an
affine spatial transformer (``"st-vit"``), to set the two kinds of "transformer" side by side.

ViT: normalise → patch embedding (a convolution with kernel = stride = patch side, one token
per patch) → a learned class token in front → learned positional embeddings added → ``depth``
pre-norm encoder blocks (``x + attention(norm(x))``, then ``x + mlp(norm(x))``) → norm → a
linear head on the class token.

Attention is written out here (not ``nn.MultiheadAttention``) so that it can return its
weights, ``(N, heads, T, T)`` with ``T`` = patches + 1 (token 0 is the class token), for
class-token attention maps and attention rollout (Abnar & Zuidema 2020). Its parameters are
laid out as ``nn.MultiheadAttention``'s (``qkv`` = ``in_proj``, rows q, k, v; ``proj`` =
``out_proj``), so weights copy across one to one.

Inputs are ``(N, C, H, W)`` in ``[0, 1]``, not normalised, as everywhere in the course: in
``st-vit`` the spatial transformer samples the raw image (zero padding = black background)
and the ViT normalises what it receives.
"""
from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from .models import Normalize, SpatialTransformer, STClassifier, localisation_net


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor,
                                 v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax(q kᵀ / √d) v`` for ``q, k, v`` of shape ``(..., T, d)``.

    Returns ``(output (..., T, d), weights (..., T, T))``; row ``i`` of the weights says how
    much token ``i`` reads from each token (each row sums to 1).
    """
    weights = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
    return weights @ v, weights


class MultiHeadSelfAttention(nn.Module):
    """Self-attention with ``heads`` heads of ``dim // heads`` channels each.

    ``qkv`` projects each token to its query, key and value (``(3 dim, dim)``, as
    ``nn.MultiheadAttention.in_proj_weight``); ``proj`` mixes the heads' outputs back
    (``out_proj``). Input and output ``(N, T, dim)``.
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} must be a multiple of heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: torch.Tensor, return_attention: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``(N, T, dim)`` → ``(N, T, dim)``, and the weights ``(N, heads, T, T)`` if asked."""
        n, tokens, dim = x.shape
        # (N, T, 3 dim) → 3 x (N, heads, T, dim / heads)
        q, k, v = self.qkv(x).view(n, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        out, weights = scaled_dot_product_attention(q, k, v)
        out = self.proj(out.transpose(1, 2).reshape(n, tokens, dim))
        return (out, weights) if return_attention else out


class EncoderBlock(nn.Module):
    """Pre-norm transformer encoder block: ``x + attn(norm(x))``, then ``x + mlp(norm(x))``
    (the MLP: Linear → GELU → Linear, ``mlp_ratio`` times wider inside). ``(N, T, dim)``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: int = 2) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attention = MultiHeadSelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def forward(self, x: torch.Tensor, return_attention: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        mixed, weights = self.attention(self.norm1(x), return_attention=True)
        x = x + mixed
        x = x + self.mlp(self.norm2(x))
        return (x, weights) if return_attention else x


class VisionTransformer(nn.Module):
    """A small ViT classifier for ``(N, C, H, W)`` images in [0, 1].

    Args:
        input_shape: ``(C, H, W)``; ``H`` and ``W`` must be multiples of ``patch_size``.
        mean, std: the dataset's per-channel statistics (normalisation is the first layer).
        patch_size: side of the square patches (one token each).
        dim: width of every token; heads: attention heads; depth: encoder blocks.
        mlp_ratio: the MLP's hidden width over ``dim``.
        num_classes: outputs (logits).
    """

    def __init__(self, input_shape: Sequence[int], mean: Sequence[float], std: Sequence[float],
                 num_classes: int = 10, patch_size: int = 7, dim: int = 64, depth: int = 6, heads: int = 4,
                 mlp_ratio: int = 2) -> None:
        super().__init__()
        channels, height, width = input_shape
        if height % patch_size or width % patch_size:
            raise ValueError(f"the input's sides {height}x{width} must be multiples of patch_size {patch_size}")
        self.patch_size = patch_size
        self.grid_size = (height // patch_size, width // patch_size)
        self.normalize = Normalize(mean, std)
        self.patch_embedding = nn.Conv2d(channels, dim, kernel_size=patch_size, stride=patch_size)
        self.class_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.position = nn.Parameter(torch.zeros(1, 1 + self.grid_size[0] * self.grid_size[1], dim))
        # Small random starts: a truncated normal with std 0.02, as timm's ViT (the ViT paper's
        # code starts the class token at zero and the positions at normal(0.02)).
        nn.init.trunc_normal_(self.class_token, std=0.02)
        nn.init.trunc_normal_(self.position, std=0.02)
        self.blocks = nn.ModuleList(EncoderBlock(dim, heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, num_classes)

    def tokens(self, x: torch.Tensor) -> torch.Tensor:
        """Images ``(N, C, H, W)`` → tokens ``(N, 1 + patches, dim)``: class token, then the
        patches row by row, each plus its positional embedding."""
        patches = self.patch_embedding(self.normalize(x)).flatten(2).transpose(1, 2)  # (N, patches, dim)
        class_token = self.class_token.expand(x.shape[0], -1, -1)
        return torch.cat([class_token, patches], dim=1) + self.position

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        tokens = self.tokens(x)
        for block in self.blocks:
            tokens = block(tokens)
        return self.head(self.norm(tokens[:, 0]))

    def attention_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every block's attention weights on images ``x``: a list (one per block) of
        ``(N, heads, T, T)``, ``T`` = 1 + patches."""
        tokens, maps = self.tokens(x), []
        for block in self.blocks:
            tokens, weights = block(tokens, return_attention=True)
            maps.append(weights)
        return maps


def attention_rollout(maps: Sequence[torch.Tensor]) -> torch.Tensor:
    """Attention rollout (Abnar & Zuidema 2020): how much each output token draws on each
    input token through all blocks, ``(N, T, T)``, from per-block weights ``(N, heads, T, T)``.

    Each block's heads are averaged and the residual connection counted as half the mixing
    (``0.5 A + 0.5 I``); the blocks' matrices are multiplied from the first to the last.
    """
    rollout = None
    for weights in maps:
        mixed = weights.mean(dim=1)
        mixed = 0.5 * mixed + 0.5 * torch.eye(mixed.shape[-1], device=mixed.device)
        rollout = mixed if rollout is None else mixed @ rollout
    return rollout


def class_token_map(model: VisionTransformer, images: torch.Tensor, rollout: bool = True) -> torch.Tensor:
    """Where the class token looks, one value per patch, ``(N, H / patch, W / patch)``:
    the rollout's class-token row if ``rollout``, else the last block's class-token
    attention averaged over heads. Run in eval mode without gradients by the caller."""
    maps = model.attention_maps(images)
    row = attention_rollout(maps)[:, 0, 1:] if rollout else maps[-1].mean(dim=1)[:, 0, 1:]
    return row.reshape(-1, *model.grid_size)


def default_patch_size(input_shape: Sequence[int]) -> int:
    """7 for MNIST-like sides (28: 4x4 patches, the 42 RTS canvas: 6x6), else 4 (CIFAR's 32: 8x8)."""
    return 7 if all(side % 7 == 0 for side in input_shape[-2:]) else 4


def vit(input_shape: Sequence[int], mean: Sequence[float], std: Sequence[float],
        num_classes: int = 10) -> VisionTransformer:
    """The course's small ViT (patch :func:`default_patch_size`, dim 64, depth 6, 4 heads)."""
    return VisionTransformer(input_shape, mean, std, num_classes=num_classes,
                             patch_size=default_patch_size(input_shape))


def st_vit(input_shape: Sequence[int], mean: Sequence[float], std: Sequence[float], num_classes: int = 10,
           window: int | None = None) -> STClassifier:
    """:func:`vit` behind an affine :class:`SpatialTransformer` with the paper's localisation
    network, started at the identity. The transformer samples the raw image; its output is
    ``window`` x ``window`` if given, else the input's size (then the ViT is :func:`vit`'s)."""
    out_size = (window, window) if window is not None else tuple(input_shape[-2:])
    transformer = SpatialTransformer(localisation_net(input_shape, 6), transform="affine", out_size=out_size)
    classifier_shape = (input_shape[0], *out_size)
    return STClassifier(transformer, vit(classifier_shape, mean, std, num_classes=num_classes))


def vit_costs(side: int, patch: int, channels: int = 1, dim: int = 64, depth: int = 6,
              mlp_ratio: int = 2, num_classes: int = 10) -> dict[str, int]:
    """What a :class:`VisionTransformer` on ``side`` x ``side`` images costs, counted, not measured.

    ``tokens`` (patches + class token); per image and forward pass, ``attention_flops``
    (``q kᵀ`` and the weighted sum of values: ``2 T² dim`` multiply-adds per block, 2 FLOPs
    each), ``linear_flops`` (the blocks' projections and MLPs, linear in ``T``),
    ``embedding_flops`` (the patch embedding, ``C P²`` inputs per token, and the head: together
    a constant for a given image, as large as the blocks' linear layers at 224x224 with 32x32
    patches) and ``attention_matrix`` entries per block and head (``T²``); ``parameters``, which
    grow with the tokens only through the positional embeddings.
    """
    tokens = (side // patch) ** 2 + 1
    per_block_linear = tokens * (4 * dim * dim + 2 * mlp_ratio * dim * dim)
    embedding_and_head = (tokens - 1) * channels * patch * patch * dim + dim * num_classes
    block_parameters = 4 * dim * dim + 4 * dim + 2 * mlp_ratio * dim * dim + (mlp_ratio + 1) * dim + 4 * dim
    return {
        "tokens": tokens,
        "attention_matrix": tokens ** 2,
        "attention_flops": depth * 2 * (2 * tokens * tokens * dim),
        "linear_flops": depth * 2 * per_block_linear,
        "embedding_flops": 2 * embedding_and_head,
        "parameters": (channels * patch * patch * dim + dim) + dim + tokens * dim + depth * block_parameters
                      + 2 * dim + dim * num_classes + num_classes,
    }
