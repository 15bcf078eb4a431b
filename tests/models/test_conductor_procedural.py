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


# --- the craft rules (issue 15): preparation, cut-off, fermatas, articulation, controls, the left hand ---


def _clicks(seconds: float, period: float, *, hold: tuple[float, float] | None = None, lead: float = 0.0,
            tail: float = 0.0) -> np.ndarray:
    """A 440 Hz click every ``period`` s over a soft sustained 220 Hz tone (no clicks inside ``hold``), with
    ``lead`` / ``tail`` seconds of silence around it."""
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    clicks = np.sin(2 * np.pi * 440 * t) * (np.mod(t, period) < 0.05)
    if hold is not None:
        clicks[(t > hold[0]) & (t < hold[1])] = 0.0
    music = 0.5 * clicks + 0.12 * np.sin(2 * np.pi * 220 * t)
    silence = np.zeros(int(lead * SAMPLE_RATE)), np.zeros(int(tail * SAMPLE_RATE))
    return np.concatenate([silence[0], music, silence[1]]).astype(np.float32)


@pytest.fixture(scope="module")
def framed():
    """12 s of clicks at 100 beats/min with 1.5 s of silence before and 3 s after."""
    return analyze_signal(_clicks(12.0, 0.6, lead=1.5, tail=3.0), SAMPLE_RATE)


def test_preparatory_beat_then_the_first_ictus_on_the_first_beat(framed):
    positions = procedural_motion(framed, ProceduralStyle(timing_jitter_s=0.0))
    baton = positions[:, 10]
    speed = np.linalg.norm(np.diff(baton, axis=0), axis=1) * 30
    first = framed.beat_times[framed.beat_times > 1.3][0]
    assert first == pytest.approx(1.5, abs=0.1)
    period = 0.6
    # at attention: still, until one beat before the first sound
    still = slice(0, int((first - period - 0.1) * 30))
    assert speed[still].max() < 0.05
    # the preparation moves, and the first ictus is the lowest point of the preparation
    prep = slice(int((first - period) * 30), int((first + 0.05) * 30))
    assert speed[prep].max() > 0.5
    ictus = int(round(first * 30))
    window = baton[int((first - period) * 30) : ictus + 3, 1]
    assert abs(int(np.argmax(window)) - (ictus - int((first - period) * 30))) <= 2  # y grows downwards


def test_cut_off_then_hands_lowered_and_still(framed):
    positions = procedural_motion(framed)
    end_of_sound = 1.5 + 12.0
    after = positions[int((end_of_sound + 1.5) * 30) :]
    during = positions[int(3 * 30) : int(12 * 30)]
    speed = np.linalg.norm(np.diff(after[:, [9, 10]], axis=0), axis=2).max() * 30
    assert speed < 0.01
    assert after[:, 10, 1].mean() > during[:, 10, 1].max() - 0.02  # the baton hand hangs below the pattern
    assert after[:, 9, 1].mean() > during[:, 9, 1].mean() + 0.03


def test_a_held_note_stops_the_beating():
    from models.conductor.procedural import held_spans
    from models.metrics.beats import motion_beat_frames

    features = analyze_signal(_clicks(16.0, 0.6, hold=(6.0, 9.6)), SAMPLE_RATE)
    spans = held_spans(features)
    assert any(start < 6.6 and end > 9.0 for start, end in spans), spans
    positions = procedural_motion(features)
    beats = motion_beat_frames(positions) / 30
    assert np.sum((beats > 6.8) & (beats < 9.0)) <= 2  # beating at 0.6 s would put 3-4 beats here
    speed = np.linalg.norm(np.diff(positions[:, 10], axis=0), axis=1)
    assert speed[int(6.8 * 30) : int(9.0 * 30)].mean() < 0.4 * speed[30 : int(5.5 * 30)].mean()  # it sustains
    assert np.sum((beats > 1.0) & (beats < 5.5)) >= 6  # beating before it
    assert np.sum((beats > 10.5) & (beats < 15.0)) >= 6  # and after it


@pytest.mark.parametrize("meter", [3, 4, 6])
def test_every_meter_has_its_own_pattern(meter):
    features = analyze_signal(_clicks(14.0, 0.5), SAMPLE_RATE)
    features = dataclasses.replace(features, meter=meter, downbeat_times=features.beat_times[::meter])
    style = ProceduralStyle(ictus_jitter=0.0, timing_jitter_s=0.0, drift=0.0, sway=0.0, phrase_variation=0.0)
    positions = procedural_motion(features, style)
    times, bar = beat_grid(features)
    inside = (times > 1.5) & (times < features.duration_s - 1.5)
    frames = np.round(times[inside] * 30).astype(int)
    x = positions[frames, 10, 0]
    per_beat = np.array([np.median(x[bar[inside] == b]) for b in range(meter)])
    # the ictus points of a bar are spread sideways (not one spot), and beat 1 is the lowest
    assert per_beat.max() - per_beat.min() > 0.04
    y = positions[frames, 10, 1]
    assert y[bar[inside] == 0].mean() > y[bar[inside] != 0].mean() + 0.01


def test_staccato_is_crisper_than_legato_and_size_and_energy_scale_the_pattern():
    features = analyze_signal(_clicks(12.0, 0.6), SAMPLE_RATE)

    def crest(style):
        baton = procedural_motion(features, style)[60:-60, 10]
        speed = np.linalg.norm(np.diff(baton, axis=0), axis=1)
        return np.percentile(speed, 98) / speed.mean(), np.ptp(baton[:, 1]), speed.mean()

    staccato, legato = crest(ProceduralStyle(legato=0.0)), crest(ProceduralStyle(legato=1.0))
    assert staccato[0] > legato[0] * 1.1
    small, big = crest(ProceduralStyle(size=0.5)), crest(ProceduralStyle(size=1.5))
    assert big[1] > 1.4 * small[1]  # (a big pattern is limited by the arm's reach)
    calm, intense = crest(ProceduralStyle(energy=0.1)), crest(ProceduralStyle(energy=0.9))
    assert intense[2] > 1.3 * calm[2]
    for name, bad in (("energy", 1.5), ("size", 0.0), ("legato", -0.1), ("energy", float("nan"))):
        with pytest.raises(ValueError, match=name):
            ProceduralStyle(**{name: bad})


def test_the_left_hand_does_not_mirror_the_baton_in_quiet_music():
    features = analyze_signal((0.05 * _clicks(12.0, 0.6)).astype(np.float32), SAMPLE_RATE)
    features = dataclasses.replace(features, loudness=np.full_like(features.loudness, 0.3))
    positions = procedural_motion(features, ProceduralStyle(drift=0.0, sway=0.0))[60:-90]
    right, left = np.diff(positions[:, 10, 1]), np.diff(positions[:, 9, 1])
    assert np.abs(left).mean() < 0.3 * np.abs(right).mean()
