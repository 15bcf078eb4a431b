"""A pixel video encoder for video search: person silhouettes -> the retrieval model's joint space.

LAVIMO (Yin et al. 2024) encodes the rendered frames themselves with a pretrained image backbone. No pretrained
image weights can be fetched here (package registries only), and a backbone trained from scratch on a few hundred
rendered clips of one grey mannequin learns the mannequin, not people. What both a rendered clip and real footage
share is the person's *shape over time*: BlazePose's segmentation mask, cropped around the person
(:mod:`models.video.pose_script`, ``silhouette (F, 64, 48)``), the input of gait recognition since GEI / GaitSet.
This module encodes those silhouettes:

- :class:`SilhouetteEncoder`: a small CNN per frame (the silhouette averaged down to 32 x 24 and its temporal
  difference as two channels, three stride-2 convolutions with GroupNorm, 32 x 24 -> 4 x 3) and a Transformer
  over time (sinusoidal positions, masked mean pooling) into the ``embed_dim`` space;
- :func:`train_pixel_encoder`: trained with LAVIMO's soft-target contrastive loss
  (:func:`models.retrieval.trimodal.soft_contrastive`) against the *frozen* motion and text embeddings of the
  retrieval model, so the library's stored embeddings and the text search stay exactly as they are (the encoder
  learns to land where the clip's motion already is);
- :func:`embed_silhouettes`: inference, and :func:`fuse` the keypoint and pixel embeddings.

Saved beside the retrieval model as ``pixel.safetensors`` + ``pixel.json`` (:func:`save_pixel_encoder`,
:func:`load_pixel_encoder`).
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from models.progress import Progress
from models.video.pose_script import SILHOUETTE_SHAPE  # the crop the pose script writes

log = logging.getLogger(__name__)


@dataclass
class PixelConfig:
    """Sizes of a :class:`SilhouetteEncoder` (saved as ``pixel.json``).

    Attributes:
        embed_dim: the retrieval model's joint embedding size.
        fps: silhouette frame rate the encoder was trained at (videos are sampled at this rate).
        frames: frames seen at once (``frames / fps`` seconds).
        width: channels of the first convolution (doubling twice).
        d_model / layers / heads: the temporal Transformer.
    """

    embed_dim: int = 256
    fps: float = 8.0
    frames: int = 32
    width: int = 24
    d_model: int = 128
    layers: int = 2
    heads: int = 4


class SilhouetteEncoder(nn.Module):
    """``forward(silhouettes (B, T, 64, 48) float in [0, 1], mask (B, T) bool) -> (B, embed_dim)`` (not normalised).

    Frames where ``mask`` is False (padding, or no person found) are left out of the pooling; ``T <= frames``.
    """

    def __init__(self, config: PixelConfig):
        super().__init__()
        self.config = config
        w = config.width

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, cout, 3, stride=2, padding=1), nn.GroupNorm(4, cout), nn.GELU())

        self.frame = nn.Sequential(block(2, w), block(w, 2 * w), block(2 * w, 4 * w))
        cells = (SILHOUETTE_SHAPE[0] // 16) * (SILHOUETTE_SHAPE[1] // 16)
        self.project = nn.Linear(4 * w * cells, config.d_model)
        position = torch.arange(config.frames)[:, None].float()
        div = torch.exp(torch.arange(0, config.d_model, 2).float() * (-math.log(10000.0) / config.d_model))
        table = torch.zeros(config.frames, config.d_model)
        table[:, 0::2], table[:, 1::2] = torch.sin(position * div), torch.cos(position * div)
        self.register_buffer("positions", table, persistent=False)
        layer = nn.TransformerEncoderLayer(config.d_model, config.heads, 4 * config.d_model, dropout=0.1,
                                           batch_first=True)  # fmt: skip
        self.temporal = nn.TransformerEncoder(layer, config.layers, enable_nested_tensor=False)
        self.out = nn.Linear(config.d_model, config.embed_dim)

    def forward(self, silhouettes: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        batch, frames = silhouettes.shape[:2]
        if frames > self.config.frames or tuple(silhouettes.shape[2:]) != SILHOUETTE_SHAPE:
            raise ValueError(f"expected (B, T<={self.config.frames}, {SILHOUETTE_SHAPE[0]}, {SILHOUETTE_SHAPE[1]}) "
                             f"silhouettes, got {tuple(silhouettes.shape)}")  # fmt: skip
        small = nn.functional.avg_pool2d(silhouettes.reshape(batch * frames, 1, *SILHOUETTE_SHAPE), 2)
        small = small.reshape(batch, frames, *small.shape[2:])
        difference = torch.zeros_like(small)
        difference[:, 1:] = small[:, 1:] - small[:, :-1]
        x = torch.stack([small, difference], dim=2).flatten(0, 1)
        x = self.project(self.frame(x).flatten(1)).reshape(batch, frames, -1) + self.positions[:frames]
        x = self.temporal(x, src_key_padding_mask=~mask)
        weights = mask.float()[..., None]
        pooled = (x * weights).sum(1) / weights.sum(1).clamp(min=1.0)
        return self.out(pooled)


def fit_silhouettes(silhouettes: np.ndarray, frames: int, start: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(T, 64, 48)`` uint8 -> ``(frames, 64, 48)`` float32 in [0, 1] and its mask ``(frames,)`` bool: a window
    (centred unless ``start`` is given) or zero padding; empty frames (no person) are masked out."""
    silhouettes = np.asarray(silhouettes)
    count = len(silhouettes)
    if count >= frames:
        begin = (count - frames) // 2 if start is None else int(np.clip(start, 0, count - frames))
        window = silhouettes[begin : begin + frames]
    else:
        window = np.concatenate([silhouettes, np.zeros((frames - count, *silhouettes.shape[1:]), silhouettes.dtype)])
    window = window.astype(np.float32) / 255.0
    return window, window.reshape(frames, -1).max(axis=1) > 0.5


def person_windows(silhouettes: np.ndarray, frames: int, hop: int, min_frames: int) -> list[np.ndarray]:
    """Windows of ``frames`` (``hop`` apart) over every run of at least ``min_frames`` frames with a person in a
    ``(T, 64, 48)`` silhouette sequence; a shorter run than ``frames`` is one window. ``[]`` when there is none."""
    found = np.asarray(silhouettes).reshape(len(silhouettes), -1).max(axis=1) > 127
    windows: list[np.ndarray] = []
    index = 0
    while index < len(found):
        if not found[index]:
            index += 1
            continue
        end = index
        while end < len(found) and found[end]:
            end += 1
        if end - index >= min_frames:
            starts = list(range(index, max(index + 1, end - frames + 1), hop))
            windows += [silhouettes[s : min(s + frames, end)] for s in starts]
        index = end
    return windows


@torch.no_grad()
def embed_silhouettes(encoder: SilhouetteEncoder, sequences: list[np.ndarray], batch_size: int = 32) -> np.ndarray:
    """L2-normalised embeddings ``(N, embed_dim)`` float32 of silhouette sequences ``(T_i, 64, 48)`` uint8 (each
    cropped centred to ``config.frames``)."""
    encoder.eval()
    device = next(encoder.parameters()).device
    out = np.zeros((len(sequences), encoder.config.embed_dim), np.float32)
    for begin in range(0, len(sequences), batch_size):
        fitted = [fit_silhouettes(s, encoder.config.frames) for s in sequences[begin : begin + batch_size]]
        frames = torch.from_numpy(np.stack([f for f, _ in fitted])).to(device)
        mask = torch.from_numpy(np.stack([m for _, m in fitted])).to(device)
        out[begin : begin + len(fitted)] = nn.functional.normalize(encoder(frames, mask), dim=-1).cpu().numpy()
    return out


def fuse(keypoint: np.ndarray, pixel: np.ndarray, pixel_weight: float = 0.5) -> np.ndarray:
    """Late fusion of keypoint and pixel video embeddings ``(N, E)``: the normalised weighted sum."""
    if not 0.0 <= pixel_weight <= 1.0:
        raise ValueError(f"pixel_weight must be in [0, 1], got {pixel_weight}")
    mixed = (1.0 - pixel_weight) * np.asarray(keypoint, np.float32) + pixel_weight * np.asarray(pixel, np.float32)
    return mixed / np.maximum(np.linalg.norm(mixed, axis=1, keepdims=True), 1e-8)


def _augment(silhouettes: np.ndarray, rng: np.random.Generator, frames: int) -> tuple[np.ndarray, np.ndarray]:
    """A random temporal window (at least 3/4 of ``frames``), a shift of up to 3 pixels and a random scale of
    +-10 % about the centre, then :func:`fit_silhouettes`."""
    count = len(silhouettes)
    length = int(rng.integers(max(2, min(count, (3 * frames) // 4)), min(count, frames) + 1))
    start = int(rng.integers(0, count - length + 1))
    window = silhouettes[start : start + length]
    scale = float(rng.uniform(0.9, 1.1))
    dy, dx = (int(v) for v in rng.integers(-3, 4, size=2))
    height, width = SILHOUETTE_SHAPE
    rows = np.clip(np.round((np.arange(height) - height / 2 - dy) / scale + height / 2).astype(int), 0, height - 1)
    cols = np.clip(np.round((np.arange(width) - width / 2 - dx) / scale + width / 2).astype(int), 0, width - 1)
    return fit_silhouettes(window[:, rows][:, :, cols], frames, 0)


@dataclass
class PixelItem:
    """A training or test item: silhouettes ``(T, 64, 48)`` uint8 of a rendered clip, the frozen motion embedding
    of its motion window and of the mirrored window ``(E,)``, and the caption sentence embeddings ``(C, text_dim)``
    with the mirrored captions' (for a mirrored sample)."""

    silhouettes: np.ndarray
    motion: np.ndarray
    motion_mirrored: np.ndarray
    sentences: np.ndarray
    sentences_mirrored: np.ndarray


def train_pixel_encoder(encoder: SilhouetteEncoder, model, items: list[PixelItem], *, steps: int,
                        batch_size: int = 32, learning_rate: float = 5e-4, temperature: float = 0.1,
                        text_weight: float = 0.5, seed: int = 0,
                        progress: Progress | None = None) -> list[float]:  # fmt: skip
    """Train ``encoder`` (in place) into ``model``'s frozen joint space; returns the loss per step.

    Loss per batch (LAVIMO's soft targets, :func:`models.retrieval.trimodal.soft_targets`, from the captions'
    sentence cosine): ``soft_contrastive(pixel, motion) + text_weight * soft_contrastive(pixel, text)``, with the
    motion and text sides frozen (precomputed in the items). Half the samples are mirrored left-right together
    with their motion and captions.

    Raises:
        ValueError: fewer than 2 items or bad settings.
    """
    from models.retrieval.training import warmup_cosine
    from models.retrieval.trimodal import soft_contrastive, soft_targets

    if len(items) < 2 or steps < 1 or not temperature > 0:
        raise ValueError(f"need >= 2 items, steps >= 1 and temperature > 0; got {len(items)}, {steps}, {temperature}")
    progress = progress or Progress()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    optimizer = torch.optim.AdamW(encoder.parameters(), lr=learning_rate, weight_decay=1e-2)
    warmup = max(1, steps // 10)
    batch_size = min(batch_size, len(items))
    losses: list[float] = []
    started = time.monotonic()
    encoder.train()
    for step in range(steps):
        frames, masks, motions, sentences = [], [], [], []
        for i in rng.choice(len(items), size=batch_size, replace=False):
            item = items[i]
            window, mask = _augment(item.silhouettes, rng, encoder.config.frames)
            mirrored = rng.random() < 0.5
            if mirrored:
                window = window[:, :, ::-1]
            frames.append(np.ascontiguousarray(window))
            masks.append(mask)
            motions.append(item.motion_mirrored if mirrored else item.motion)
            pool = item.sentences_mirrored if mirrored else item.sentences
            sentences.append(pool[int(rng.integers(len(pool)))])
        sentence = nn.functional.normalize(torch.from_numpy(np.stack(sentences).astype(np.float32)), dim=-1)
        targets = soft_targets(sentence)
        with torch.no_grad():
            text = model.encode_text_features(sentence)
        pixel = encoder(torch.from_numpy(np.stack(frames)), torch.from_numpy(np.stack(masks)))
        motion = torch.from_numpy(np.stack(motions).astype(np.float32))
        loss = soft_contrastive(pixel, motion, targets, temperature)
        loss = loss + text_weight * soft_contrastive(pixel, text, targets, temperature)
        for group in optimizer.param_groups:
            group["lr"] = warmup_cosine(step, learning_rate, warmup, steps)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(encoder.parameters(), 1.0)
        optimizer.step()
        losses.append(float(loss.detach()))
        if step % 25 == 0 or step == steps - 1:
            progress.update((step + 1) / steps, "pixel encoder training")
            log.info("step %d/%d loss %.4f (%.0f s)", step + 1, steps, losses[-1], time.monotonic() - started)
    encoder.eval()
    return losses


def save_pixel_encoder(encoder: SilhouetteEncoder, run_dir: str | Path) -> Path:
    """Write ``pixel.json`` and ``pixel.safetensors`` into ``run_dir``. Returns the weights' path."""
    from safetensors.torch import save_file

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "pixel.json").write_text(json.dumps(asdict(encoder.config), indent=2))
    path = run_dir / "pixel.safetensors"
    save_file({k: v.detach().contiguous().cpu() for k, v in encoder.state_dict().items()}, str(path))
    return path


def load_pixel_encoder(run_dir: str | Path, device: str = "cpu") -> SilhouetteEncoder | None:
    """The pixel encoder saved in ``run_dir``, or ``None`` when it has none."""
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    if not (run_dir / "pixel.json").is_file() or not (run_dir / "pixel.safetensors").is_file():
        return None
    encoder = SilhouetteEncoder(PixelConfig(**json.loads((run_dir / "pixel.json").read_text())))
    encoder.load_state_dict(load_file(str(run_dir / "pixel.safetensors"), device=device))
    return encoder.to(device).eval()
