"""Stage-1 window sampler: hard negatives for corpora of one short piece."""

from __future__ import annotations

import numpy as np
import pytest

from models.conductor.diffusion_data import ContrastiveWindows
from models.motion.conductor_dataset import ConductorSample


def _piece(seconds: float, seed: int = 0) -> ConductorSample:
    frames = int(seconds * 30)
    rng = np.random.default_rng(seed)
    return ConductorSample(rng.random((3 * frames, 128), dtype=np.float32),
                           rng.random((frames, 13, 2), dtype=np.float32))


def test_a_lone_20_s_piece_still_gets_non_overlapping_negatives():
    piece = _piece(20.0)  # 600 frames: a window in the middle has nothing 10 s away
    windows = ContrastiveWindows([piece], window=60, seed=0)
    for _ in range(20):
        mel, motion, label = windows.batch(8)
        assert mel.shape == (8, 180, 128) and motion.shape == (8, 60, 13, 2)
        for i in np.flatnonzero(label.numpy() == 0):
            start = int(np.flatnonzero(piece.mel[:, 0] == mel[i, 0, 0].item())[0]) // 3
            matched = piece.motion[start:start + 60]
            assert not np.array_equal(matched, motion[i].numpy())
            # The negative does not overlap the matched window.
            neg = next(s for s in range(0, 541) if np.array_equal(piece.motion[s:s + 60], motion[i].numpy()))
            assert abs(neg - start) >= 60


def test_a_piece_too_short_for_two_windows_is_a_clear_error():
    windows = ContrastiveWindows([_piece(3.0)], window=60, seed=0)  # 90 frames: no two disjoint windows
    with pytest.raises(ValueError, match="do not overlap"):
        for _ in range(10):
            windows.batch(4)
