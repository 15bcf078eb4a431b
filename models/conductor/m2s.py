"""M2S-Net (music–motion synchronisation network) and the M2S-GAN generator, after VirtualConductor.

Papers: Chen et al., "VirtualConductor: Music-driven Conducting Video Generation System" (ICME 2021 demo);
Liu, Chen et al., "Self-Supervised Music-Motion Synchronization Learning for Music-Driven Conducting Motion
Generation" (JCST 37(3), 2022). Architecture facts: ../shared/DESIGN.md §4. Parameter names follow the official
checkpoints where that costs nothing (M2S-Net loads unchanged with strict=True); the generator's temporal
convolution uses torch's current weight-norm parametrisation, and :func:`convert_official_m2sgan` renames the
official generator's keys (see :mod:`models.conductor.virtualconductor`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import weight_norm

from models.conductor.stgcn import MotionEncoder

MUSIC_DIM = 64
NOISE_DIM = 8
#: Motion frames per noise step of the generator (the noise upsampler multiplies length by 1·5·3·2 = 30).
NOISE_STRIDE = 30


class ConvResLayer(nn.Module):
    """3×3 conv (reflect padding) → BN → ReLU, plus a residual: none, identity, or 1×1 conv + BN when the channel
    count changes. Input/output ``(N, C, T, F)``."""

    def __init__(self, in_channels: int, out_channels: int, residual: bool = True) -> None:
        super().__init__()
        self.conv2d_layer = nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 3, 1, 1, padding_mode="reflect"),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(),
        )
        self.has_residual = residual
        if residual and in_channels != out_channels:
            self.residual = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1), nn.BatchNorm2d(out_channels))
        else:
            self.residual = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2d_layer(x)
        if not self.has_residual:
            return out
        return out + (x if self.residual is None else self.residual(x))


class MusicEncoder(nn.Module):
    """ConductorMotion100 mel ``(N, T90, 128)`` → per-frame music features ``(N, T30, 64)``, ``T30 = ⌈T90 / 3⌉``.

    The mel is a one-channel image (time × mel bins). conv1: ResLayers 1→16 (no residual), 16→16, 16→16, MaxPool
    5 (stride 1×2); conv2: 16→32 (1×1 residual), 32→32, MaxPool 5 (stride 3×2: 90 Hz → 30 Hz); conv3: 32→32 ×2,
    MaxPool 3 (stride 1×2) → (32 channels × 16 bins) = 512 per frame → Conv1d 512→64 + BN.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Sequential(
            ConvResLayer(1, 16, residual=False), ConvResLayer(16, 16), ConvResLayer(16, 16),
            nn.MaxPool2d(5, stride=(1, 2), padding=2),
        )  # fmt: skip
        self.conv2 = nn.Sequential(
            ConvResLayer(16, 32), ConvResLayer(32, 32), nn.MaxPool2d(5, stride=(3, 2), padding=2)
        )
        self.conv3 = nn.Sequential(
            ConvResLayer(32, 32), ConvResLayer(32, 32), nn.MaxPool2d(3, stride=(1, 2), padding=1)
        )
        self.conv4 = nn.Sequential(nn.Conv1d(32 * 16, MUSIC_DIM, kernel_size=1), nn.BatchNorm1d(MUSIC_DIM))

    def forward(self, mel: torch.Tensor) -> torch.Tensor:
        if mel.dim() != 3 or mel.shape[2] != 128:
            raise ValueError(f"mel must be (N, T90, 128), got {tuple(mel.shape)}")
        h = self.conv3(self.conv2(self.conv1(mel.unsqueeze(1))))  # (N, 32, T30, 16)
        n, c, t, f = h.shape
        h = h.permute(0, 1, 3, 2).reshape(n, c * f, t)  # channel-major 16·c + bin
        return self.conv4(h).transpose(1, 2)  # (N, T30, 64)


class M2SNet(nn.Module):
    """Music encoder + ST-GCN motion encoder + a per-frame sync head: ``concat(64, 64)`` → Conv1d 128→64→64→1 with
    ReLU, sigmoid. ``forward(mel (N, 3T, 128), motion (N, T, 13, 2))`` → ``(N, T, 1)`` per-frame probability that
    music and motion belong together. Trained with BCE on the time-mean (matched = 1, a window ≥ 10 s away = 0)."""

    def __init__(self) -> None:
        super().__init__()
        self.music_encoder = MusicEncoder()
        self.motion_encoder = MotionEncoder()
        self.fuse_layer = nn.Sequential(
            nn.Conv1d(2 * MUSIC_DIM, 64, 1), nn.ReLU(), nn.Conv1d(64, 64, 1), nn.ReLU(), nn.Conv1d(64, 1, 1),
            nn.Sigmoid(),
        )  # fmt: skip

    def forward(self, mel: torch.Tensor, motion: torch.Tensor) -> torch.Tensor:
        music = self.music_encoder(mel)
        moves = self.motion_encoder(motion)
        frames = min(music.shape[1], moves.shape[1])
        fused = torch.cat([music[:, :frames], moves[:, :frames]], dim=2).transpose(1, 2)
        return self.fuse_layer(fused).transpose(1, 2)


class TemporalBlock(nn.Module):
    """Two weight-normalised dilated convolutions (kernel 5, 'same' length via reflect padding) each followed by
    BN and ReLU, a 3-tap average (zero-padded), and a residual (1×1 conv when channels change), then ReLU.
    Input/output ``(N, C, T)``; needs ``T > 2·dilation``.

    The official block pads by ``(k-1)·d`` on both sides and crops ``(k-1)·d/2`` from each end of the output,
    which equals reflect padding of ``(k-1)·d/2`` per side used here.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int) -> None:
        super().__init__()
        pad = (kernel_size - 1) * dilation // 2
        self.conv1 = weight_norm(nn.Conv1d(in_channels, out_channels, kernel_size, padding=pad, dilation=dilation,
                                           padding_mode="reflect"))  # fmt: skip
        self.bn1 = nn.BatchNorm1d(out_channels)
        self.conv2 = weight_norm(nn.Conv1d(out_channels, out_channels, kernel_size, padding=pad, dilation=dilation,
                                           padding_mode="reflect"))  # fmt: skip
        self.bn2 = nn.BatchNorm1d(out_channels)
        self.smooth = nn.AvgPool1d(3, stride=1, padding=1)
        self.downsample = nn.Conv1d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = self.smooth(torch.relu(self.bn2(self.conv2(out))))
        return torch.relu(out + (x if self.downsample is None else self.downsample(x)))


class PoseDecoder(nn.Module):
    """TCN of 6 temporal blocks (64 channels, kernel 5, dilation 2^i) → Linear 64→64 → MLP 64→64→64→26 with ReLU
    and a final sigmoid. ``(N, T, 128)`` → ``(N, T, 26)`` in [0, 1]."""

    def __init__(self, in_channels: int = 2 * MUSIC_DIM, channels: int = 64, layers: int = 6,
                 kernel_size: int = 5) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[
            TemporalBlock(in_channels if i == 0 else channels, channels, kernel_size, 2**i) for i in range(layers)
        ])  # fmt: skip
        self.linear = nn.Linear(channels, 64)
        self.mlp = nn.Sequential(nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 26),
                                 nn.Sigmoid())  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.blocks(x.transpose(1, 2)).transpose(1, 2)
        return self.mlp(self.linear(h))


class M2SGenerator(nn.Module):
    """The M2S-GAN generator: frozen music encoder (64) ⊕ upsampled noise (64) → pose decoder → COCO-13.

    Noise ``(N, ⌈T/30⌉, 8)`` is upsampled ×30 by ConvTranspose1d 8→16 (k3, s1) → 16 (k11, s5) → 32 (k5, s3) →
    64 (k6, s2), each with ReLU, then BatchNorm. ``forward(mel (N, 3T, 128), noise)`` → ``(N, T, 13, 2)`` in [0, 1].
    """

    def __init__(self) -> None:
        super().__init__()
        self.music_encoder = MusicEncoder()
        self.noise_upsampler = nn.Sequential(
            nn.ConvTranspose1d(NOISE_DIM, 16, 3, stride=1, padding=1), nn.ReLU(),
            nn.ConvTranspose1d(16, 16, 11, stride=5, padding=3), nn.ReLU(),
            nn.ConvTranspose1d(16, 32, 5, stride=3, padding=1), nn.ReLU(),
            nn.ConvTranspose1d(32, 64, 6, stride=2, padding=2), nn.ReLU(),
        )  # fmt: skip
        self.noise_norm = nn.BatchNorm1d(64)
        self.decoder = PoseDecoder()

    @staticmethod
    def noise_steps(frames: int) -> int:
        """Noise length needed for ``frames`` motion frames (``⌈frames / 30⌉``)."""
        return -(-int(frames) // NOISE_STRIDE)

    def forward(self, mel: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        music = self.music_encoder(mel)  # (N, T, 64)
        frames = music.shape[1]
        if noise.dim() != 3 or noise.shape[2] != NOISE_DIM or noise.shape[1] * NOISE_STRIDE < frames:
            raise ValueError(f"noise must be (N, >= {self.noise_steps(frames)}, {NOISE_DIM}), got {tuple(noise.shape)}")
        hidden = self.noise_norm(self.noise_upsampler(noise.transpose(1, 2)))[:, :, :frames].transpose(1, 2)
        out = self.decoder(torch.cat([music, hidden], dim=2))
        return out.view(out.shape[0], frames, 13, 2)
