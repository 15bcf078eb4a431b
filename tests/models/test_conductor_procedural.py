"""The procedural conductor and the generator registry: shapes, determinism, patterns, beat alignment."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from backend.conductor.synth import synthesize_demo_piece
from models.conductor import ProceduralStyle, analyze_audio, analyze_signal, available_models, generate
from models.conductor.audio import SAMPLE_RATE
from models.conductor.procedural import beat_grid, procedural_motion
from models.metrics.beats import bc_seconds

BRAHMS = "librosa_example_audio/Hungarian_Dance_number_5_-_Allegro_in_F_sharp_minor_(string_orchestra).ogg"


@pytest.fixture(scope="module")
def brahms(shared_data):
    return analyze_audio(shared_data / BRAHMS)


@pytest.fixture(scope="module")
def brahms_shuffled(shared_data):
    """Brahms cut into 0.5 s pieces put back in a random order: same sound, different beats."""
    import librosa

    samples, _ = librosa.load(shared_data / BRAHMS, sr=SAMPLE_RATE)
    pieces = np.array_split(samples, int(len(samples) / (0.5 * SAMPLE_RATE)))
    order = np.random.default_rng(0).permutation(len(pieces))
    return analyze_signal(np.concatenate([pieces[i] for i in order]), SAMPLE_RATE)


def test_generate_contract_shape_range_and_determinism(brahms):
    motion = generate(brahms, "procedural", seed=3)
    assert motion.skeleton.name == "coco13" and motion.fps == 30.0
    assert motion.positions.shape == (round(brahms.duration_s * 30), 13, 2)
    assert 0.0 <= motion.positions.min() and motion.positions.max() <= 1.0
    np.testing.assert_array_equal(motion.positions, generate(brahms, "procedural", seed=3).positions)
    assert not np.array_equal(motion.positions, generate(brahms, "procedural", seed=4).positions)


def test_conductor_motion100_proportions(brahms):
    positions = procedural_motion(brahms)
    shoulders = positions[:, 5, 0] - positions[:, 6, 0]  # left shoulder is on the image right
    assert np.median(shoulders) == pytest.approx(0.2, abs=0.01)
    hips = positions[:, 11:13].mean(axis=1)
    np.testing.assert_allclose(np.median(hips, axis=0), [0.5, 0.75], atol=0.01)


def test_procedural_beats_align_with_the_music_better_than_with_shuffled_music(brahms, brahms_shuffled):
    own = bc_seconds(brahms.beat_times, procedural_motion(brahms, seed=0))
    other = bc_seconds(brahms.beat_times, procedural_motion(brahms_shuffled, seed=0))
    assert own > 0.75
    assert own > other + 0.15


@pytest.mark.parametrize("meter", [2, 3, 4])
def test_beat_one_is_the_lowest_point_of_each_bar(meter):
    features = analyze_signal(synthesize_demo_piece(seconds=12.0, bpm=100.0, meter=3), SAMPLE_RATE)
    features = dataclasses.replace(features, meter=meter, downbeat_times=features.beat_times[::meter])
    style = ProceduralStyle(ictus_jitter=0.0, timing_jitter_s=0.0, drift=0.0, sway=0.0)
    positions = procedural_motion(features, style)
    times, bar = beat_grid(features)
    inside = (times > 0.2) & (times < features.duration_s - 0.2)
    frames = np.round(times[inside] * 30).astype(int)
    baton_y = positions[frames, 10, 1]  # image y grows downwards
    assert baton_y[bar[inside] == 0].mean() > baton_y[bar[inside] != 0].mean() + 0.01


def test_left_hand_rises_in_a_crescendo():
    t = np.arange(int(12 * SAMPLE_RATE)) / SAMPLE_RATE
    clicks = (np.sin(2 * np.pi * 440 * t) * (np.mod(t, 0.5) < 0.05)).astype(np.float32)
    gain = np.where(t < 6, 0.03, 0.03 * 10 ** (1.5 * np.clip(t - 6, 0, 2) / 2))
    features = analyze_signal((clicks * gain).astype(np.float32), SAMPLE_RATE)
    positions = procedural_motion(features, ProceduralStyle(left_hand=0.0, drift=0.0))
    left_y = positions[:, 9, 1]
    assert left_y[6 * 30 + 10 : 8 * 30].min() < left_y[: 5 * 30].mean() - 0.03


def test_random_styles_are_in_range_and_seeded():
    a, b = ProceduralStyle.random(1), ProceduralStyle.random(1)
    assert a == b and a != ProceduralStyle.random(2)
    for name, (low, high) in ProceduralStyle.RANGES.items():
        assert low <= getattr(a, name) <= high
    with pytest.raises(ValueError):
        ProceduralStyle(size=-1.0)


def test_registry_reports_models_and_rejects_unknown_ones(brahms):
    report = available_models()
    assert set(report) == {"procedural", "diffusion", "m2sgan"}
    assert report["procedural"]["available"] is True
    with pytest.raises(ValueError, match="unknown conductor model"):
        generate(brahms, "nonexistent")
