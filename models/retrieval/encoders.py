"""Motion encoders into the joint text-motion space.

- :class:`TMRMotionEncoder` — TMR (Petrovich et al., ICCV 2023) style: per-frame features -> Linear -> learned
  [CLS] token + sinusoidal positions -> Transformer encoder (paper: d=256, 6 layers, 4 heads, FF 1024) -> [CLS]
  output -> Linear to the embedding size.
- :class:`PatchMotionEncoder` — Motion Patches (Yu et al., CVPR 2024): the ``(3, frames, 80)`` body-part image is
  cut into 16x16 patches and encoded by a transformers ``ViTModel`` (built from a ``ViTConfig``, random init, or
  loaded from a local pre-trained folder); patch tokens are average-pooled and projected to the embedding size.

Both normalise their inputs with dataset statistics stored as buffers (saved with the weights).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from models.retrieval.body_parts import NUM_POINTS
from models.retrieval.features import TMR_FEATURE_DIM


@dataclass
class TMRConfig:
    """TMR-style encoder size (paper values; the CPU default config uses fewer layers)."""

    d_model: int = 256
    layers: int = 6
    heads: int = 4
    feedforward: int = 1024
    dropout: float = 0.1
    max_frames: int = 200


@dataclass
class PatchConfig:
    """Motion Patches ViT size. ``frames`` must be a multiple of ``patch_size``; 80 points = 5 patch columns."""

    frames: int = 224
    patch_size: int = 16
    hidden_size: int = 256
    layers: int = 6
    heads: int = 4
    intermediate_size: int = 1024
    dropout: float = 0.1
    pretrained: str | None = None


class TMRMotionEncoder(nn.Module):
    """Per-frame features ``(B, T, 246)`` + padding mask ``(B, T)`` (True = real frame) -> ``(B, E)``."""

    def __init__(self, config: TMRConfig, embed_dim: int = 256):
        super().__init__()
        self.config = config
        self.register_buffer("mean", torch.zeros(TMR_FEATURE_DIM))
        self.register_buffer("std", torch.ones(TMR_FEATURE_DIM))
        self.input = nn.Linear(TMR_FEATURE_DIM, config.d_model)
        self.cls = nn.Parameter(torch.randn(1, 1, config.d_model) * 0.02)
        position = torch.arange(config.max_frames + 1).unsqueeze(1)
        div = torch.exp(torch.arange(0, config.d_model, 2) * (-math.log(10000.0) / config.d_model))
        table = torch.zeros(config.max_frames + 1, config.d_model)
        table[:, 0::2] = torch.sin(position * div)
        table[:, 1::2] = torch.cos(position * div)
        self.register_buffer("positions", table, persistent=False)
        layer = nn.TransformerEncoderLayer(
            config.d_model, config.heads, config.feedforward, config.dropout, activation="gelu", batch_first=True
        )
        self.transformer = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(config.d_model)
        self.output = nn.Linear(config.d_model, embed_dim)

    def forward(self, frames: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``frames (B, T, 246)`` float32, ``mask (B, T)`` bool -> ``(B, E)`` (not normalised)."""
        batch, length, dim = frames.shape
        if dim != TMR_FEATURE_DIM or length > self.config.max_frames:
            raise ValueError(f"TMR encoder expects (B, T<={self.config.max_frames}, {TMR_FEATURE_DIM}), "
                             f"got {tuple(frames.shape)}")  # fmt: skip
        x = self.input((frames - self.mean) / self.std)  # (B, T, d)
        x = torch.cat([self.cls.expand(batch, 1, -1), x], dim=1) + self.positions[: length + 1]
        keep = torch.cat([torch.ones(batch, 1, dtype=torch.bool, device=mask.device), mask], dim=1)
        x = self.transformer(x, src_key_padding_mask=~keep)  # (B, T+1, d)
        return self.output(self.norm(x[:, 0]))


class PatchMotionEncoder(nn.Module):
    """Motion Patches image ``(B, 3, frames, 80)`` -> ``(B, E)`` through a ViT."""

    def __init__(self, config: PatchConfig, embed_dim: int = 256):
        super().__init__()
        from transformers import ViTConfig, ViTModel

        if config.frames % config.patch_size or NUM_POINTS % config.patch_size:
            raise ValueError(f"patch frames ({config.frames}) and points ({NUM_POINTS}) must be multiples of the "
                             f"patch size {config.patch_size}")  # fmt: skip
        self.config = config
        self.register_buffer("mean", torch.zeros(3, 1, NUM_POINTS))
        self.register_buffer("std", torch.ones(3, 1, NUM_POINTS))
        if config.pretrained:
            self.vit = ViTModel.from_pretrained(config.pretrained, local_files_only=True, add_pooling_layer=False)
            hidden = self.vit.config.hidden_size
        else:
            vit_config = ViTConfig(
                image_size=(config.frames, NUM_POINTS),
                patch_size=config.patch_size,
                num_channels=3,
                hidden_size=config.hidden_size,
                num_hidden_layers=config.layers,
                num_attention_heads=config.heads,
                intermediate_size=config.intermediate_size,
                hidden_dropout_prob=config.dropout,
                attention_probs_dropout_prob=config.dropout,
            )
            self.vit = ViTModel(vit_config, add_pooling_layer=False)
            hidden = config.hidden_size
        self.output = nn.Sequential(nn.LayerNorm(hidden), nn.Linear(hidden, embed_dim))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        """``image (B, 3, frames, 80)`` float32 -> ``(B, E)`` (not normalised)."""
        if image.ndim != 4 or tuple(image.shape[1:]) != (3, self.config.frames, NUM_POINTS):
            raise ValueError(f"patch encoder expects (B, 3, {self.config.frames}, {NUM_POINTS}), "
                             f"got {tuple(image.shape)}")  # fmt: skip
        x = (image - self.mean) / self.std
        hidden = self.vit(pixel_values=x, interpolate_pos_encoding=bool(self.config.pretrained)).last_hidden_state
        return self.output(hidden[:, 1:].mean(dim=1))  # average of patch tokens, (B, E)
