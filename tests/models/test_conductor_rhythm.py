"""The explicit rhythm condition of the Diffusion-Conductor: beat grid, phases and meter from the mel alone."""

from __future__ import annotations

import numpy as np
import pytest

from backend.conductor.synth import synthesize_demo_piece
from models.conductor.audio import conductor_mel
from models.conductor.rhythm import RHYTHM_DIM, BeatGrid, beat_grid_from_mel, beat_phase, rhythm_features


@pytest.fixture(scope="module", params=[3, 4])
def piece(request):
    """12 s of the synthesised piece at 120 BPM: beats every 0.5 s from t = 0, downbeats every `meter` beats."""
    meter = request.param
    return meter, conductor_mel(synthesize_demo_piece(seconds=12.0, bpm=120.0, meter=meter))


def test_beat_phase_is_linear_between_beats_and_extends_the_grid():
    beats = np.array([1.0, 1.5, 2.0, 2.6])
    phase, index = beat_phase(beats, np.array([0.75, 1.0, 1.25, 1.9, 2.3, 2.9, 3.2]))
    np.testing.assert_allclose(phase, [0.5, 0.0, 0.5, 0.8, 0.5, 0.5, 0.0], atol=1e-9)
    np.testing.assert_array_equal(index, [-1, 0, 0, 1, 2, 3, 4])
    phase, index = beat_phase(np.array([]), np.array([0.25, 0.5]), default_period=0.5)
    np.testing.assert_allclose(phase, [0.5, 0.0])


def test_beat_grid_of_a_known_piece(piece):
    meter, mel = piece
    grid = beat_grid_from_mel(mel)
    assert grid.meter == meter
    period = np.median(np.diff(grid.beat_times))
    assert period == pytest.approx(0.5, abs=0.03)
    # Tracked beats sit on the true grid (multiples of 0.5 s), downbeats on multiples of meter * 0.5 s.
    assert np.abs(grid.beat_times / 0.5 - np.round(grid.beat_times / 0.5)).max() * 0.5 < 0.06
    bars = grid.downbeat_times / (0.5 * meter)
    assert np.abs(bars - np.round(bars)).max() * 0.5 * meter < 0.06


def test_rhythm_features_channels(piece):
    meter, mel = piece
    frames = mel.shape[0] // 3
    feats = rhythm_features(mel, frames)
    assert feats.shape == (frames, RHYTHM_DIM) and feats.dtype == np.float32 and np.isfinite(feats).all()
    # Phases are unit circles; the meter is one-hot.
    np.testing.assert_allclose(feats[:, 1] ** 2 + feats[:, 2] ** 2, 1.0, atol=1e-5)
    np.testing.assert_allclose(feats[:, 3] ** 2 + feats[:, 4] ** 2, 1.0, atol=1e-5)
    assert (feats[:, 6:].sum(axis=1) == 1).all() and feats[0, 6 + (2, 3, 4).index(meter)] == 1
    # Beat phase wraps once per beat (0.5 s = 15 frames), bar phase once per bar.
    beat_angle = np.arctan2(feats[:, 1], feats[:, 2])
    assert abs(np.count_nonzero(np.diff(beat_angle) < -np.pi) - frames / 15) <= 2
    bar_angle = np.arctan2(feats[:, 3], feats[:, 4])
    assert abs(np.count_nonzero(np.diff(bar_angle) < -np.pi) - frames / (15 * meter)) <= 1
    # Onsets peak on the beats (the synthesised piece has a note on every beat).
    on_beat = feats[np.arange(0, frames - 1, 15), 0]
    assert on_beat.mean() > 2 * feats[:, 0].mean() * 0.9 and 0 <= feats[:, 0].min() and feats[:, 0].max() <= 1


def test_more_frames_than_the_mel_continue_the_grid(piece):
    _, mel = piece
    frames = mel.shape[0] // 3
    longer = rhythm_features(mel, frames + 30)
    np.testing.assert_allclose(longer[:frames], rhythm_features(mel, frames), atol=1e-6)
    np.testing.assert_allclose(longer[frames:, 0], longer[frames - 1, 0])  # onset held at its last value


def test_silence_and_bad_mels():
    flat = np.zeros((900, 128), np.float32)
    feats = rhythm_features(flat, 300, grid=BeatGrid(np.array([]), 4, 0))
    assert np.isfinite(feats).all() and feats.shape == (300, RHYTHM_DIM)
    with pytest.raises(ValueError, match="128"):
        rhythm_features(np.zeros((900, 64), np.float32))
    bad = np.zeros((900, 128), np.float32)
    bad[5, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        beat_grid_from_mel(bad)
    with pytest.raises(ValueError, match="frames"):
        rhythm_features(flat, 0)


def test_beat_grid_from_features_round_trips_and_shifts(tmp_path):
    import json
    from types import SimpleNamespace

    from models.conductor.rhythm import BEATS_FILE, read_sample_grid

    beats = np.arange(0.25, 10.0, 0.5)
    features = SimpleNamespace(beat_times=beats, downbeat_times=beats[2::4], meter=4)
    grid = BeatGrid.from_features(features)
    assert grid.meter == 4 and grid.first_downbeat == 2
    np.testing.assert_allclose(grid.downbeat_times, beats[2::4])
    clip = grid.shifted(3.0)  # a clip cut out of the piece from 3 s on: same bars, its own clock
    np.testing.assert_allclose(clip.downbeat_times, beats[2::4] - 3.0)
    (tmp_path / BEATS_FILE).write_text(json.dumps(clip.to_dict()))
    back = read_sample_grid(tmp_path)
    np.testing.assert_allclose(back.beat_times, clip.beat_times) and back.meter == 4
    frames = 150
    mel = np.zeros((3 * frames, 128), np.float32)
    feats = rhythm_features(mel, frames, grid=clip)
    on_downbeat = int(round((beats[6] - 3.0) * 30 - 0.5))  # a downbeat 2 s into the clip
    assert abs(feats[on_downbeat, 4] - 1.0) < 0.02 and abs(feats[on_downbeat, 2] - 1.0) < 0.02  # both phases ~0
    assert read_sample_grid(tmp_path / "elsewhere") is None
    (tmp_path / BEATS_FILE).write_text('{"meter": 5}')
    with pytest.raises(ValueError, match=BEATS_FILE):
        read_sample_grid(tmp_path)
    with pytest.raises(ValueError, match="increasing"):
        BeatGrid(np.array([1.0, 0.5]), 4, 0)
