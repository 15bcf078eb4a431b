"""Conductor metrics (../shared/DESIGN.md §4): MSE, FGD, Diversity, BC, SCE, RDE, jitter.

- **MSE**: mean squared error over ``(T, 13, 2)`` between a generated and a reference motion.
- **FGD**: Fréchet distance between Gaussians fitted to per-frame 64-d ST-GCN features (M2S-Net's motion
  encoder) of generated and reference motion: ``|μ₁-μ₂|² + Tr(Σ₁ + Σ₂ - 2(Σ₁Σ₂)^½)``.
- **Diversity**: mean over frames of the L1 distance between the features of generated samples and a shuffled
  copy of the same set (Diffusion-Conductor's definition); here the samples are the 10 s windows of a piece,
  paired by a seeded derangement.
- **BC**: :mod:`models.metrics.beats` (seconds clock and seed-compatible variant).
- **SCE** (strength contour error, VirtualConductor): per-frame signed mean displacement, absolute value, average
  pooled (60 frames, stride 30); ``log(1e7·MSE + 1)`` between generated and reference contours.
- **RDE** (rhythm density error, VirtualConductor): Welch power spectra (fs = 30 Hz) averaged over the 26
  coordinate channels; ``log(1e7·mean((P_ref - P_gen)²) + 1)`` over frequency bins 6..25 (0.7-3 Hz).
- **Jitter**: mean joint acceleration magnitude, image units / s² (second differences × fps²).
- **Sync** (VirtualConductor's M2S-Net as a judge): mean per-frame probability that music and motion belong
  together. **Sync control**: the same score with the motion circularly shifted against its music by 1/4, 1/2 and
  3/4 of the piece (mean of the three), and **sync gain** = sync − sync control. M2S-Net scores how much a motion
  looks like real conducting as well as whether it follows *this* music (the official M2S-GAN's motion scores 0.45–0.50
  on average against the wrong part of its music, docs/conductor.md), so the gain is the part of the score that
  depends on the music.
"""

from __future__ import annotations

import numpy as np
from scipy import linalg, signal

from models.metrics.beats import bc_seconds, bc_seed

MOTION_FPS = 30


def _check(positions: np.ndarray, name: str = "positions") -> np.ndarray:
    positions = np.asarray(positions, dtype=np.float64)
    if positions.ndim != 3 or positions.shape[0] < 3:
        raise ValueError(f"{name} must be (T>=3, J, D), got {positions.shape}")
    return positions


def _pair(generated: np.ndarray, reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    generated, reference = _check(generated, "generated"), _check(reference, "reference")
    if generated.shape[1:] != reference.shape[1:]:
        raise ValueError(f"generated {generated.shape} and reference {reference.shape} differ in joints/dims")
    frames = min(generated.shape[0], reference.shape[0])
    return generated[:frames], reference[:frames]


def mse(generated: np.ndarray, reference: np.ndarray) -> float:
    """Mean squared error over all frames, joints and coordinates (lengths cropped to the shorter)."""
    generated, reference = _pair(generated, reference)
    return float(np.mean((generated - reference) ** 2))


def jitter(positions: np.ndarray, fps: float = MOTION_FPS) -> float:
    """Mean joint acceleration magnitude ``|p[t+1] - 2p[t] + p[t-1]| · fps²`` (units of positions per s²)."""
    positions = _check(positions)
    acceleration = (positions[2:] - 2.0 * positions[1:-1] + positions[:-2]) * float(fps) ** 2
    return float(np.linalg.norm(acceleration, axis=2).mean())


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to ``(N, D)`` and ``(M, D)`` feature sets."""
    features_a = np.asarray(features_a, dtype=np.float64)
    features_b = np.asarray(features_b, dtype=np.float64)
    if features_a.ndim != 2 or features_a.shape[1] != features_b.shape[1] or min(len(features_a), len(features_b)) < 2:
        raise ValueError(f"need two (N>=2, D) feature sets, got {features_a.shape} and {features_b.shape}")
    mu_a, mu_b = features_a.mean(0), features_b.mean(0)
    cov_a, cov_b = np.cov(features_a, rowvar=False), np.cov(features_b, rowvar=False)
    covmean, _ = linalg.sqrtm(cov_a @ cov_b, disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(cov_a.shape[0]) * 1e-6
        covmean = linalg.sqrtm((cov_a + offset) @ (cov_b + offset))
    covmean = np.real(covmean)
    diff = mu_a - mu_b
    return float(diff @ diff + np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.trace(covmean))


def diversity(window_features: list[np.ndarray], seed: int = 0) -> float:
    """Mean per-frame L1 distance between feature windows and a shuffled (deranged) copy of the same windows.

    Args:
        window_features: equally long ``(T, D)`` feature arrays, one per sample (e.g. 10 s windows of a piece).
    """
    if len(window_features) < 2:
        raise ValueError("diversity needs at least two samples (windows)")
    stack = np.stack([np.asarray(w, dtype=np.float64) for w in window_features])
    rng = np.random.default_rng(seed)
    order = np.arange(len(stack))
    while np.any(order == np.arange(len(stack))):
        order = rng.permutation(len(stack))
    return float(np.abs(stack - stack[order]).sum(axis=2).mean())


def strength_contour_error(generated: np.ndarray, reference: np.ndarray) -> float:
    """VirtualConductor's SCE (see module docstring); 0 for identical motions."""
    generated, reference = _pair(generated, reference)

    def contour(m: np.ndarray) -> np.ndarray:
        v = np.zeros(m.shape[0])
        v[1:] = np.abs((m[:-1] - m[1:]).reshape(m.shape[0] - 1, -1).mean(axis=1))
        windows = np.lib.stride_tricks.sliding_window_view(v, 60)[::30] if v.size >= 60 else v[None]
        return windows.mean(axis=1)

    return float(np.log(np.mean((contour(generated) - contour(reference)) ** 2) * 1e7 + 1.0))


def rhythm_density_error(generated: np.ndarray, reference: np.ndarray, fps: float = MOTION_FPS) -> float:
    """VirtualConductor's RDE (see module docstring); 0 for identical motions."""
    generated, reference = _pair(generated, reference)

    def spectrum(m: np.ndarray) -> np.ndarray:
        flat = m.reshape(m.shape[0], -1).T  # (26, T)
        _, psd = signal.welch(flat, fs=fps, axis=-1)
        return psd.mean(axis=0)

    p_gen, p_ref = spectrum(generated), spectrum(reference)
    return float(np.log(np.mean((p_ref[6:26] - p_gen[6:26]) ** 2) * 1e7 + 1.0))


def motion_features(m2snet, positions: np.ndarray) -> np.ndarray:
    """Per-frame 64-d ST-GCN features ``(T, 64)`` float64 of a COCO-13 motion from a loaded M2S-Net (eval mode)."""
    import torch

    positions = _check(positions)
    with torch.no_grad():
        feats = m2snet.motion_encoder(torch.from_numpy(positions.astype(np.float32))[None])[0]
    return feats.numpy().astype(np.float64)


def sync_score(m2snet, mel: np.ndarray, positions: np.ndarray) -> float:
    """M2S-Net's mean per-frame probability that ``mel`` (3T, 128) and ``positions`` (T, 13, 2) belong together."""
    import torch

    frames = min(positions.shape[0], mel.shape[0] // 3)
    with torch.no_grad():
        prob = m2snet(torch.from_numpy(np.ascontiguousarray(mel[: 3 * frames], dtype=np.float32))[None],
                      torch.from_numpy(np.asarray(positions[:frames], dtype=np.float32))[None])  # fmt: skip
    return float(prob.mean())


#: Circular shifts of the motion against its music for :func:`sync_control`, as fractions of the piece.
CONTROL_SHIFTS = (0.25, 0.5, 0.75)


def sync_control(m2snet, mel: np.ndarray, positions: np.ndarray) -> float:
    """:func:`sync_score` of ``positions`` (T, 13, 2) circularly shifted against ``mel`` (3T, 128) by each of
    :data:`CONTROL_SHIFTS` of its length, averaged: what M2S-Net gives this motion for music it does not follow.
    ``sync_score - sync_control`` is the music-dependent part of the score (module docstring)."""
    frames = min(positions.shape[0], mel.shape[0] // 3)
    moved = np.asarray(positions[:frames])
    return float(np.mean([sync_score(m2snet, mel, np.roll(moved, int(round(frames * s)), axis=0))
                          for s in CONTROL_SHIFTS]))  # fmt: skip


def window_split(array: np.ndarray, window: int) -> list[np.ndarray]:
    """Non-overlapping windows of ``window`` frames (the remainder is dropped)."""
    return [array[i : i + window] for i in range(0, array.shape[0] - window + 1, window)]


def evaluate_motion(positions: np.ndarray, *, beat_times: np.ndarray, mel: np.ndarray,
                    reference: np.ndarray | None = None, m2snet=None, fps: float = MOTION_FPS,
                    diversity_window_s: float = 10.0) -> dict[str, float | None]:
    """All conductor metrics for one generated motion.

    Args:
        positions: generated ``(T, 13, 2)`` motion.
        beat_times: music beats in seconds (``MusicFeatures.beat_times``) for ``bc_seconds``.
        mel: ``(3T, 128)`` ConductorMotion100 mel for ``bc_seed`` and the sync score.
        reference: optional reference motion ``(T, 13, 2)`` for MSE, FGD, SCE, RDE (``None`` -> those are None).
        m2snet: optional loaded :class:`models.conductor.m2s.M2SNet` for FGD, diversity and sync (else None).

    Returns:
        ``{"bc_seconds", "bc_seed", "jitter", "mse", "fgd", "diversity", "sce", "rde", "sync", "sync_control",
        "sync_gain"}`` (``None`` where the input it needs was not given).
    """
    positions = _check(positions)
    result: dict[str, float | None] = {
        "bc_seconds": bc_seconds(beat_times, positions, fps), "bc_seed": bc_seed(mel, positions),
        "jitter": jitter(positions, fps), "mse": None, "fgd": None, "diversity": None, "sce": None, "rde": None,
        "sync": None, "sync_control": None, "sync_gain": None,
    }  # fmt: skip
    if reference is not None:
        result["mse"] = mse(positions, reference)
        result["sce"] = strength_contour_error(positions, reference)
        result["rde"] = rhythm_density_error(positions, reference, fps)
    if m2snet is not None:
        feats = motion_features(m2snet, positions)
        windows = window_split(feats, int(diversity_window_s * fps))
        result["diversity"] = diversity(windows) if len(windows) >= 2 else None
        result["sync"] = sync_score(m2snet, mel, positions)
        result["sync_control"] = sync_control(m2snet, mel, positions)
        result["sync_gain"] = result["sync"] - result["sync_control"]
        if reference is not None:
            result["fgd"] = frechet_distance(feats, motion_features(m2snet, _check(reference, "reference")))
    return result
