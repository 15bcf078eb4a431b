"""Training losses of the Diffusion-Conductor (../shared/DESIGN.md §4), masked over the whole window.

    L = MSE(x0_hat, x0) + 1e-6 · L1(ST-GCN(x0_hat), ST-GCN(x0)) + 0.1 · MSE(Δx0_hat, Δx0)
        - 0.1 · clamp(elbow_motion(x0_hat), max=elbow_motion(x0)) + 0.1 · head_jitter(x0_hat)

* x0 terms live in the normalised motion space (per-channel standardised, see ``MotionNormalizer``); the perceptual
  term compares per-frame ST-GCN features of the de-normalised keypoints.
* ``elbow_motion`` is the temporal standard deviation of the elbow keypoints (COCO 7 and 8), averaged over their
  channels; clamping it at the teacher's value rewards elbows that move as much as the data — never more — so the
  model does not collapse to a static average pose (the "elbow" term of Diffusion-Conductor).
* ``head_jitter`` is the mean |second difference| of the face keypoints (COCO 0-4): the head should not shake.
* ``mask`` (B, T) marks valid frames; every frame of the window counts (the reference code's defect of masking
  all but the first 60 frames is not reproduced). Padded frames of short pieces are excluded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

ELBOW_CHANNELS = (14, 15, 16, 17)  # COCO 7 l_elbow, 8 r_elbow: (x, y) each
HEAD_CHANNELS = tuple(range(10))  # COCO 0-4: nose, eyes, ears


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms (defaults: the paper's)."""

    perceptual: float = 1e-6
    velocity: float = 0.1
    elbow: float = 0.1
    head_jitter: float = 0.1

    def to_dict(self) -> dict:
        return asdict(self)


def _masked_mean(values: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean of (B, T, ...) values over valid frames of mask (B, T) (and every trailing element)."""
    while mask.dim() < values.dim():
        mask = mask.unsqueeze(-1)
    weight = mask.expand_as(values)
    return (values * weight).sum() / weight.sum().clamp_min(1.0)


def _masked_temporal_std(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, T, C) -> (B, C) standard deviation over the valid frames."""
    m = mask.unsqueeze(-1)
    n = m.sum(1).clamp_min(1.0)
    mean = (x * m).sum(1) / n
    var = (((x - mean[:, None]) ** 2) * m).sum(1) / n
    return (var + 1e-8).sqrt()


def diffusion_losses(
    x0_hat: torch.Tensor,
    x0: torch.Tensor,
    mask: torch.Tensor | None = None,
    *,
    weights: LossWeights = LossWeights(),
    feature_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    denormalize: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """All loss terms and their weighted total.

    Args:
        x0_hat: (B, T, 26) predicted clean motion (normalised space).
        x0: (B, T, 26) target clean motion (normalised space).
        mask: (B, T) float, 1 on valid frames; ``None`` = all valid.
        weights: the term weights.
        feature_fn: per-frame motion features for the perceptual term, keypoints (B, T, 13, 2) -> (B, T, F)
            (the contrastively trained ST-GCN); skipped when ``None`` or ``weights.perceptual == 0``.
        denormalize: (B, T, 26) normalised -> (B, T, 13, 2) keypoints, needed with ``feature_fn``.

    Returns:
        ``{"total", "mse", "velocity", "elbow", "head_jitter", "perceptual"}`` scalar tensors.

    Raises:
        ValueError: on mismatched shapes, or ``feature_fn`` without ``denormalize``.
    """
    if x0_hat.shape != x0.shape or x0.dim() != 3:
        raise ValueError(f"x0_hat and x0 must both be (B, T, 26), got {tuple(x0_hat.shape)} and {tuple(x0.shape)}")
    if mask is None:
        mask = torch.ones(x0.shape[:2], dtype=x0.dtype, device=x0.device)
    if mask.shape != x0.shape[:2]:
        raise ValueError(f"mask must be {tuple(x0.shape[:2])}, got {tuple(mask.shape)}")
    mask = mask.to(x0.dtype)
    terms: dict[str, torch.Tensor] = {"mse": _masked_mean((x0_hat - x0) ** 2, mask)}
    pair_mask = mask[:, 1:] * mask[:, :-1]
    vel_hat, vel = x0_hat.diff(dim=1), x0.diff(dim=1)
    terms["velocity"] = _masked_mean((vel_hat - vel) ** 2, pair_mask)
    elbow = list(ELBOW_CHANNELS)
    motion_hat = _masked_temporal_std(x0_hat[..., elbow], mask)
    motion_ref = _masked_temporal_std(x0[..., elbow], mask).detach()
    terms["elbow"] = torch.minimum(motion_hat, motion_ref).mean()
    head = list(HEAD_CHANNELS)
    triple_mask = mask[:, 2:] * mask[:, 1:-1] * mask[:, :-2]
    terms["head_jitter"] = _masked_mean(x0_hat[..., head].diff(n=2, dim=1).abs(), triple_mask)
    if feature_fn is not None and weights.perceptual > 0:
        if denormalize is None:
            raise ValueError("feature_fn needs denormalize to turn x0 into keypoints")
        feats_hat = feature_fn(denormalize(x0_hat))
        with torch.no_grad():
            feats = feature_fn(denormalize(x0))
        terms["perceptual"] = _masked_mean((feats_hat - feats).abs(), mask)
    else:
        terms["perceptual"] = torch.zeros((), device=x0.device)
    terms["total"] = (
        terms["mse"]
        + weights.perceptual * terms["perceptual"]
        + weights.velocity * terms["velocity"]
        - weights.elbow * terms["elbow"]
        + weights.head_jitter * terms["head_jitter"]
    )
    return terms
