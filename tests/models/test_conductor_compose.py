"""Composed MIDI training music: meters, tempo maps and the ground truth they report."""

from __future__ import annotations

import mido
import numpy as np
import pytest

from models.conductor.compose import TEMPO_CURVES, TIME_SIGNATURES, PieceSpec, compose_piece, compose_set


def _note_on_times(path, channel: int) -> np.ndarray:
    """Seconds of every note-on on ``channel``, as mido computes them from the file's own tempo map."""
    now, times = 0.0, []
    for message in mido.MidiFile(str(path)):
        now += message.time
        if message.type == "note_on" and message.velocity > 0 and message.channel == channel:
            times.append(now)
    return np.unique(np.round(times, 6))


@pytest.mark.parametrize("ts", sorted(TIME_SIGNATURES))
def test_bass_falls_on_the_reported_downbeats_of_every_meter(ts, tmp_path):
    piece = compose_piece(PieceSpec(ts, bpm=90.0, bars=8, tempo_curve="rubato", seed=4))
    path = piece.save(tmp_path / "p.mid")
    midi = mido.MidiFile(str(path))
    meta = [m for m in midi.tracks[0] if m.type == "time_signature"][0]
    assert (meta.numerator, meta.denominator) == TIME_SIGNATURES[ts][:2]
    assert piece.meter == TIME_SIGNATURES[ts][2] and len(piece.beat_times) == 8 * piece.meter
    bass = _note_on_times(path, channel=0)
    # Every downbeat carries a bass note (read back through mido's tempo handling, to the microsecond) ...
    assert np.abs(bass[:, None] - piece.downbeat_times[None, :]).min(axis=0).max() < 1e-3
    # ... and the bass plays on no beat that is not 1 (or the mid-bar pulse of 4/4 and 6/8).
    position = np.abs(piece.beat_times[:, None] - bass[None, :]).argmin(axis=0) % piece.meter
    allowed = {0, 2} if ts == "4/4" else {0, 1} if ts == "6/8" else {0}
    assert set(position.tolist()) <= allowed


def test_tempo_curves_shape_the_beat_periods():
    periods = {}
    for curve in TEMPO_CURVES:
        piece = compose_piece(PieceSpec("3/4", bpm=120.0, bars=24, tempo_curve=curve, seed=1))
        periods[curve] = np.diff(piece.beat_times)
    first, last = slice(0, 12), slice(-12, None)
    assert np.allclose(periods["steady"], 0.5)
    assert periods["rit"][last].mean() > 1.1 * periods["rit"][first].mean() and periods["rit"][-1] > 0.675
    assert periods["accel"][len(periods["accel"]) // 2 - 3:][:6].mean() < 0.85 * periods["accel"][first].mean()
    sudden = periods["sudden"]
    assert abs(sudden[last].mean() / sudden[first].mean() - 1.0) > 0.2
    assert 0.45 < periods["rubato"].min() and periods["rubato"].max() < 0.55 and periods["rubato"].std() > 1e-3


def test_composition_is_seeded_and_specs_cover_every_meter():
    a = compose_piece(PieceSpec("6/8", seed=7))
    b = compose_piece(PieceSpec("6/8", seed=7))
    c = compose_piece(PieceSpec("6/8", seed=8))
    notes = [[(m.type, getattr(m, "note", None), m.time) for t in p.midi.tracks for m in t] for p in (a, b, c)]
    assert notes[0] == notes[1] and notes[0] != notes[2]
    specs = compose_set(8, seed=3)
    assert sorted(s.time_signature for s in specs) == sorted(list(TIME_SIGNATURES) * 2)
    assert specs == compose_set(8, seed=3) and specs != compose_set(8, seed=4)
    for s in specs:
        seconds = compose_piece(s).beat_times[-1]
        assert 25.0 < seconds < 80.0, s


@pytest.mark.parametrize("kwargs, message", [({"time_signature": "5/4"}, "time_signature"),
                                             ({"bpm": 10.0}, "bpm"), ({"bars": 2}, "bars"),
                                             ({"tempo_curve": "wobble"}, "tempo_curve")])
def test_bad_specs_name_the_field(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PieceSpec(**kwargs)
    with pytest.raises(ValueError, match="count"):
        compose_set(0)
