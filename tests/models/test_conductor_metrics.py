"""Conductor metrics: BC on both clocks, FGD, diversity, SCE, RDE, jitter, MSE."""

from __future__ import annotations

import numpy as np
import pytest

from models.metrics.beats import (
    bc_seconds,
    bc_seed,
    beat_consistency,
    mel_beat_frames,
    motion_beat_frames,
)
from models.metrics.conductor import (
    diversity,
    evaluate_motion,
    frechet_distance,
    jitter,
    mse,
    rhythm_density_error,
    strength_contour_error,
)


def _bouncing(frames: int, period: int, phase: int = 0) -> np.ndarray:
    """A (T, 13, 2) motion whose joints stop every ``period`` frames (speed 1 - cos): the backward-difference speed
    has its minima exactly at frames ``phase + k * period``."""
    s = (np.arange(frames) - phase + 0.5) / period
    x = 0.3 + 0.1 * (s - np.sin(2 * np.pi * s) / (2 * np.pi)) / (frames / period)
    positions = np.full((frames, 13, 2), 0.5)
    positions[:, :, 0] = x[:, None]
    return positions


def test_motion_beats_are_speed_minima():
    beats = motion_beat_frames(_bouncing(300, 20, phase=5))
    np.testing.assert_array_equal(beats, np.arange(25, 290, 20))  # frames within `order` of the ends are not minima


def test_bc_values_on_the_seconds_clock():
    motion = _bouncing(300, 20)
    beats_s = np.arange(20, 290, 20) / 30.0
    assert bc_seconds(beats_s, motion) == pytest.approx(1.0)
    # Every music beat 3 frames (= sigma = 0.1 s) away from a motion beat: exp(-1/2).
    assert bc_seconds(beats_s + 0.1, motion) == pytest.approx(np.exp(-0.5), rel=1e-6)
    assert beat_consistency([], [1.0], 1.0) == 0.0


def test_seed_variant_mixes_clocks():
    # The same beat at 2 s is mel frame 180 but motion frame 60: the seed-compatible BC compares 180 with 60.
    assert beat_consistency([180], [60], 3.0) == pytest.approx(0.0)
    assert beat_consistency([2.0], [60 / 30.0], 0.1) == pytest.approx(1.0)


def test_mel_beats_track_a_click_track_and_bc_seed_runs():
    from models.conductor.audio import conductor_mel

    sr = 22050
    t = np.arange(int(12 * sr)) / sr
    clicks = (np.sin(2 * np.pi * 1000 * t) * (np.mod(t, 0.5) < 0.03)).astype(np.float32)
    mel = conductor_mel(clicks, sr)
    beats = mel_beat_frames(mel) / 90.0
    assert np.median(np.diff(beats)) == pytest.approx(0.5, abs=0.03)
    value = bc_seed(mel, _bouncing(360, 15))
    assert 0.0 <= value <= 1.0


def test_fgd_diversity_and_distances():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(2000, 8))
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)
    shifted = frechet_distance(a, a + 1.0)
    assert shifted == pytest.approx(8.0, rel=0.05)  # |mu1 - mu2|^2 = 8 for a unit shift in 8 dimensions
    windows = [np.full((10, 4), float(i)) for i in range(4)]
    assert diversity(windows) > 0
    assert diversity([np.zeros((10, 4))] * 3) == 0.0
    with pytest.raises(ValueError):
        diversity([np.zeros((10, 4))])


def test_jitter_sce_rde_mse():
    frames = 300
    linear = np.zeros((frames, 13, 2))
    linear[:, :, 0] = np.linspace(0, 1, frames)[:, None]
    assert jitter(linear) == pytest.approx(0.0, abs=1e-9)
    t = np.arange(frames) / 30.0
    wave = np.zeros((frames, 13, 2))
    wave[:, :, 1] = 0.01 * np.sin(2 * np.pi * 2.0 * t)[:, None]
    expected = 0.01 * (2 * np.pi * 2.0) ** 2 * 2 / np.pi  # mean |a| of a sine
    assert jitter(wave) == pytest.approx(expected, rel=0.02)
    slow = 0.5 + 0.05 * np.sin(2 * np.pi * 1.0 * t)[:, None, None] * np.ones((1, 13, 2))
    fast = 0.5 + 0.05 * np.sin(2 * np.pi * 2.5 * t)[:, None, None] * np.ones((1, 13, 2))
    assert strength_contour_error(slow, slow) == pytest.approx(0.0)
    assert rhythm_density_error(slow, slow) == pytest.approx(0.0)
    assert rhythm_density_error(slow, fast) > 0.1
    assert strength_contour_error(slow, 0.5 + (slow - 0.5) * 3.0) > 0.1
    assert mse(slow, slow + 0.1) == pytest.approx(0.01)


def test_evaluate_motion_keys():
    motion = _bouncing(450, 15)
    mel = np.random.default_rng(0).random((1350, 128)).astype(np.float32)
    values = evaluate_motion(motion, beat_times=np.arange(15, 440, 15) / 30.0, mel=mel, reference=None)
    assert set(values) == {"bc_seconds", "bc_seed", "jitter", "mse", "fgd", "diversity", "sce", "rde", "sync",
                           "sync_control", "sync_gain"}
    assert values["bc_seconds"] == pytest.approx(1.0)
    assert values["fgd"] is None and values["mse"] is None
