"""The Diffusion-Conductor denoiser: a MotionDiffuse-style cross-modality linear transformer that predicts x0.

Architecture (../shared/DESIGN.md §4; MotionDiffuse, Zhang et al. 2022, "efficient attention" of Shen et al. 2021):

    x_t (B,T,26) --Linear--> h (B,T,d) + learned positions[:T]
    for each of N layers:
        h = h + Stylize(LinearSelfAttention(LN(h)), e)
        h = h + Stylize(LinearCrossAttention(LN(h), LN(music)), e)
        h = h + Stylize(FFN(LN(h)), e)
    x0_hat = Linear(d -> 26)(h)

``e`` (B,T,d) is the per-frame stylisation embedding: the diffusion timestep embedding (sinusoidal -> MLP, shared
over frames) plus a projection of the per-frame music features, so each frame is modulated by the music under it.
``Stylize(y, e) = W_out(SiLU(LN(y)·(1+s) + b))`` with ``(s, b) = Linear(SiLU(e))`` and ``W_out`` zero-initialised,
so every block starts as the identity.

Linear attention: softmax of the queries over each head's channels, softmax of the keys over time, then
``y = q · (kᵀ v)`` — O(T·d²) instead of O(T²·d), works for any T, and exports to ONNX with ``matmul`` only.

Condition dropout (classifier-free guidance): ``music_keep`` (B,T) in {0,1} selects per frame between the music
feature and a learned null feature; training draws it with keep probability ``1 - cond_drop`` per frame.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

#: Motion channels: 13 COCO keypoints × (x, y).
MOTION_DIM = 26


@dataclass(frozen=True)
class DenoiserConfig:
    """Hyper-parameters of :class:`ConductorDenoiser` (saved next to every checkpoint).

    Attributes:
        motion_dim: channels per frame (26 = 13 keypoints × 2).
        music_dim: channels of the per-frame music features (64 = the M2S music encoder's output).
        rhythm_dim: channels of the explicit rhythm condition appended to them (0 = none, the paper's
            condition; 9 = :data:`models.conductor.rhythm.RHYTHM_DIM`: beat / bar phase, meter, onsets, level).
        latent_dim: transformer width d.
        num_layers: N transformer layers.
        num_heads: H attention heads (``latent_dim`` must be divisible by it).
        ff_dim: hidden width of each feed-forward block.
        max_frames: length of the learned position table (the longest window in frames at 30 fps).
        dropout: dropout inside the stylisation and FFN blocks.
    """

    motion_dim: int = MOTION_DIM
    music_dim: int = 64
    rhythm_dim: int = 0
    latent_dim: int = 128
    num_layers: int = 8
    num_heads: int = 8
    ff_dim: int = 256
    max_frames: int = 900
    dropout: float = 0.1

    def __post_init__(self) -> None:
        for name in ("motion_dim", "music_dim", "latent_dim", "num_layers", "num_heads", "ff_dim", "max_frames"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"DenoiserConfig.{name} must be a positive int, got {value!r}")
        if not isinstance(self.rhythm_dim, int) or self.rhythm_dim < 0:
            raise ValueError(f"DenoiserConfig.rhythm_dim must be an int >= 0, got {self.rhythm_dim!r}")
        if self.latent_dim % self.num_heads:
            raise ValueError(
                f"DenoiserConfig.latent_dim ({self.latent_dim}) must be divisible by num_heads ({self.num_heads})"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"DenoiserConfig.dropout must be in [0, 1), got {self.dropout}")

    @property
    def condition_dim(self) -> int:
        """Channels of the per-frame condition the denoiser reads: ``music_dim + rhythm_dim``."""
        return self.music_dim + self.rhythm_dim

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> DenoiserConfig:
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown DenoiserConfig keys: {sorted(unknown)}")
        return cls(**data)


def timestep_embedding(timesteps: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of diffusion timesteps (DDPM / "Attention is all you need").

    Args:
        timesteps: (B,) integer or float timesteps in [0, 1000).
        dim: embedding width (even).

    Returns:
        (B, dim) float32.
    """
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=timesteps.device) / half)
    args = timesteps.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


class StylizationBlock(nn.Module):
    """``W_out(Dropout(SiLU(LN(y)·(1+s) + b)))`` with ``(s, b)`` from the embedding; ``W_out`` starts at zero."""

    def __init__(self, latent_dim: int, dropout: float) -> None:
        super().__init__()
        self.emb_layers = nn.Sequential(nn.SiLU(), nn.Linear(latent_dim, 2 * latent_dim))
        self.norm = nn.LayerNorm(latent_dim)
        self.out_layers = nn.Sequential(nn.SiLU(), nn.Dropout(dropout), nn.Linear(latent_dim, latent_dim))
        nn.init.zeros_(self.out_layers[-1].weight)
        nn.init.zeros_(self.out_layers[-1].bias)

    def forward(self, y: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """y (B,T,d), emb (B,T,d) -> (B,T,d)."""
        scale, shift = self.emb_layers(emb).chunk(2, dim=-1)
        return self.out_layers(self.norm(y) * (1 + scale) + shift)


def _linear_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Efficient attention: q (B,Tq,d), k (B,Tk,d), v (B,Tk,d) -> (B,Tq,d)."""
    b, tq, d = query.shape
    tk = key.shape[1]
    head = d // num_heads
    q = F.softmax(query.reshape(b, tq, num_heads, head), dim=-1).transpose(1, 2)  # B,H,Tq,c
    k = F.softmax(key.reshape(b, tk, num_heads, head), dim=1).transpose(1, 2)  # B,H,Tk,c (softmax over time)
    v = value.reshape(b, tk, num_heads, head).transpose(1, 2)  # B,H,Tk,c
    context = torch.matmul(k.transpose(-1, -2), v)  # B,H,c,c
    return torch.matmul(q, context).transpose(1, 2).reshape(b, tq, d)


class LinearSelfAttention(nn.Module):
    """Residual linear self-attention over frames, stylised by the embedding."""

    def __init__(self, cfg: DenoiserConfig) -> None:
        super().__init__()
        d = cfg.latent_dim
        self.num_heads = cfg.num_heads
        self.norm = nn.LayerNorm(d)
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.proj_out = StylizationBlock(d, cfg.dropout)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """h (B,T,d), emb (B,T,d) -> (B,T,d)."""
        x = self.norm(h)
        y = _linear_attention(self.query(x), self.key(x), self.value(x), self.num_heads)
        return h + self.proj_out(y, emb)


class LinearCrossAttention(nn.Module):
    """Residual linear cross-attention from motion frames to the (projected) per-frame music features."""

    def __init__(self, cfg: DenoiserConfig) -> None:
        super().__init__()
        d = cfg.latent_dim
        self.num_heads = cfg.num_heads
        self.norm = nn.LayerNorm(d)
        self.music_norm = nn.LayerNorm(d)
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.proj_out = StylizationBlock(d, cfg.dropout)

    def forward(self, h: torch.Tensor, music: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        """h (B,T,d), music (B,Tm,d), emb (B,T,d) -> (B,T,d)."""
        m = self.music_norm(music)
        y = _linear_attention(self.query(self.norm(h)), self.key(m), self.value(m), self.num_heads)
        return h + self.proj_out(y, emb)


class FeedForward(nn.Module):
    """Residual two-layer GELU feed-forward block, stylised by the embedding."""

    def __init__(self, cfg: DenoiserConfig) -> None:
        super().__init__()
        d = cfg.latent_dim
        self.norm = nn.LayerNorm(d)
        self.net = nn.Sequential(nn.Linear(d, cfg.ff_dim), nn.GELU(), nn.Dropout(cfg.dropout), nn.Linear(cfg.ff_dim, d))
        self.proj_out = StylizationBlock(d, cfg.dropout)

    def forward(self, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        return h + self.proj_out(self.net(self.norm(h)), emb)


class DenoiserLayer(nn.Module):
    """Self-attention, cross-attention to music, feed-forward."""

    def __init__(self, cfg: DenoiserConfig) -> None:
        super().__init__()
        self.self_attn = LinearSelfAttention(cfg)
        self.cross_attn = LinearCrossAttention(cfg)
        self.ffn = FeedForward(cfg)

    def forward(self, h: torch.Tensor, music: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.self_attn(h, emb)
        h = self.cross_attn(h, music, emb)
        return self.ffn(h, emb)


class ConductorDenoiser(nn.Module):
    """x0-predicting denoiser ``f(x_t, t, music, keep) -> x0_hat`` (all tensors batch-first).

    The motion is in the normalised space of the checkpoint (see :class:`models.conductor.diffusion.MotionNormalizer`);
    this module knows nothing about image coordinates.
    """

    def __init__(self, cfg: DenoiserConfig) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.latent_dim
        self.motion_in = nn.Linear(cfg.motion_dim, d)
        self.positions = nn.Parameter(torch.randn(cfg.max_frames, d) * 0.02)
        self.time_embed = nn.Sequential(nn.Linear(d, d), nn.SiLU(), nn.Linear(d, d))
        self.music_in = nn.Linear(cfg.condition_dim, d)
        self.music_embed = nn.Sequential(nn.SiLU(), nn.Linear(d, d))
        self.null_music = nn.Parameter(torch.zeros(cfg.condition_dim))
        self.layers = nn.ModuleList(DenoiserLayer(cfg) for _ in range(cfg.num_layers))
        self.out_norm = nn.LayerNorm(d)
        self.motion_out = nn.Linear(d, cfg.motion_dim)

    def forward(
        self,
        x_t: torch.Tensor,
        timesteps: torch.Tensor,
        music: torch.Tensor,
        music_keep: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict the clean motion x0.

        Args:
            x_t: (B, T, motion_dim) float32 noisy motion at diffusion step ``timesteps``; T <= ``max_frames``.
            timesteps: (B,) int64 diffusion steps in [0, 1000).
            music: (B, T, condition_dim) float32 per-frame condition at 30 fps (same T as the motion): the music
                encoder's features, followed by the rhythm features when ``rhythm_dim > 0``.
            music_keep: (B, T) float32 in {0, 1}; 0 replaces that frame's music with the learned null feature
                (condition dropout / the unconditional branch of classifier-free guidance). ``None`` keeps all.

        Returns:
            (B, T, motion_dim) float32 x0 prediction.
        """
        if x_t.dim() != 3 or x_t.shape[-1] != self.cfg.motion_dim:
            raise ValueError(f"x_t must be (B, T, {self.cfg.motion_dim}), got {tuple(x_t.shape)}")
        if music.shape[:2] != x_t.shape[:2] or music.shape[-1] != self.cfg.condition_dim:
            raise ValueError(
                f"music must be (B, T, {self.cfg.condition_dim}) matching x_t {tuple(x_t.shape[:2])}, "
                f"got {tuple(music.shape)}"
            )
        frames = x_t.shape[1]
        if not torch.jit.is_tracing() and not torch.compiler.is_compiling() and frames > self.cfg.max_frames:
            raise ValueError(f"window of {frames} frames exceeds max_frames={self.cfg.max_frames}")
        if music_keep is not None:
            music = torch.lerp(self.null_music.expand_as(music), music, music_keep.unsqueeze(-1).to(music.dtype))
        m = self.music_in(music)  # B,T,d
        emb = self.time_embed(timestep_embedding(timesteps, self.cfg.latent_dim))[:, None, :] + self.music_embed(m)
        h = self.motion_in(x_t) + self.positions[:frames]
        for layer in self.layers:
            h = layer(h, m, emb)
        return self.motion_out(self.out_norm(h))
