"""Window samplers over a conductor corpus for the two training stages (seeded, rank-aware for DDP).

A corpus is a list of :class:`models.motion.conductor_dataset.ConductorSample` (whole pieces: mel (3T, 128), motion
(T, 13, 2)). Stage 1 draws (mel window, motion window) pairs: the matched motion, or a *hard negative* from the same
piece at least ``min_offset_s`` (10 s) away (another piece when the piece is too short; with no other piece, the
farthest window of the same piece that does not overlap). Stage 2 draws motion
windows with the cached per-frame music features under them; pieces shorter than the window are padded and masked.
"""

from __future__ import annotations

import numpy as np
import torch

from models.motion.conductor_dataset import ConductorSample

MOTION_FPS = 30


def _lengths(samples: list[ConductorSample]) -> np.ndarray:
    return np.array([s.motion.shape[0] for s in samples], dtype=np.float64)


class ContrastiveWindows:
    """Stage-1 batches: ``(mel (B, 3W, 128), motion (B, W, 13, 2), label (B,))`` with half matched pairs.

    Args:
        samples: the corpus (pieces shorter than ``window`` frames are skipped).
        window: motion frames per window (mel windows are 3x longer).
        min_offset_s: hard negatives start at least this far (seconds) from the matched window.
        seed: RNG seed (add the DDP rank so ranks draw different windows).

    Raises:
        ValueError: when no piece is at least ``window`` frames long.
    """

    def __init__(self, samples: list[ConductorSample], window: int, *, min_offset_s: float = 10.0, seed: int = 0):
        self.samples = [s for s in samples if s.motion.shape[0] >= window]
        if not self.samples:
            raise ValueError(f"no training piece is at least {window} frames ({window / MOTION_FPS:.1f} s) long")
        self.window = window
        self.min_offset = int(round(min_offset_s * MOTION_FPS))
        lengths = _lengths(self.samples) - window + 1
        self.p = lengths / lengths.sum()
        self.rng = np.random.default_rng(seed)

    def _negative(self, piece: int, start: int) -> tuple[int, int]:
        sample = self.samples[piece]
        frames = sample.motion.shape[0]
        far = [s for s in range(0, frames - self.window + 1) if abs(s - start) >= self.min_offset]
        if far:
            return piece, int(self.rng.choice(far))
        others = [i for i in range(len(self.samples)) if i != piece]
        if not others:
            # A lone piece shorter than window + 2 * min_offset: the farthest window that does not overlap.
            candidates = [0, frames - self.window]
            best = max(candidates, key=lambda s: abs(s - start))
            if abs(best - start) >= self.window:
                return piece, int(best)
            raise ValueError(f"hard negatives need a piece of at least {2 * self.window / MOTION_FPS:.1f} s "
                             "(two windows that do not overlap), or a second piece")
        other = int(self.rng.choice(others))
        return other, int(self.rng.integers(0, self.samples[other].motion.shape[0] - self.window + 1))

    def batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mels, motions, labels = [], [], []
        w = self.window
        for i in range(batch_size):
            piece = int(self.rng.choice(len(self.samples), p=self.p))
            start = int(self.rng.integers(0, self.samples[piece].motion.shape[0] - w + 1))
            matched = i % 2 == 0
            m_piece, m_start = (piece, start) if matched else self._negative(piece, start)
            mels.append(self.samples[piece].mel[3 * start:3 * (start + w)])
            motions.append(self.samples[m_piece].motion[m_start:m_start + w])
            labels.append(1.0 if matched else 0.0)
        return (torch.from_numpy(np.stack(mels)), torch.from_numpy(np.stack(motions)),
                torch.tensor(labels, dtype=torch.float32))


class DiffusionWindows:
    """Stage-2 batches: ``(x0 (B, W, 26) normalised, music (B, W, F), mask (B, W))``.

    Args:
        motions: per piece (T_i, 26) float32 normalised motion.
        music: per piece (T_i, F) float32 cached music features (same T_i).
        window: frames per window; shorter pieces are zero-padded with mask 0.
        seed: RNG seed (add the DDP rank).
    """

    def __init__(self, motions: list[torch.Tensor], music: list[torch.Tensor], window: int, *, seed: int = 0):
        if len(motions) != len(music) or not motions:
            raise ValueError("need the same, non-zero number of motion and music pieces")
        for m, f in zip(motions, music, strict=True):
            if m.shape[0] != f.shape[0]:
                raise ValueError(f"motion has {m.shape[0]} frames but its music features {f.shape[0]}")
        self.motions, self.music, self.window = motions, music, window
        lengths = np.array([max(1, m.shape[0] - window + 1) for m in motions], dtype=np.float64)
        self.p = lengths / lengths.sum()
        self.rng = np.random.default_rng(seed)

    def batch(self, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        w = self.window
        dim, fdim = self.motions[0].shape[1], self.music[0].shape[1]
        x0 = torch.zeros(batch_size, w, dim)
        music = torch.zeros(batch_size, w, fdim)
        mask = torch.zeros(batch_size, w)
        for i in range(batch_size):
            piece = int(self.rng.choice(len(self.motions), p=self.p))
            frames = self.motions[piece].shape[0]
            start = int(self.rng.integers(0, max(1, frames - w + 1)))
            n = min(w, frames - start)
            x0[i, :n] = self.motions[piece][start:start + n]
            music[i, :n] = self.music[piece][start:start + n]
            mask[i, :n] = 1.0
        return x0, music, mask
