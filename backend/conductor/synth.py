"""A short piece Baton synthesises itself for ``baton demo`` (numpy only; no third-party audio is shipped).

A waltz-like progression in 3/4 at 112 BPM: a bass note on every downbeat, soft chords on beats 2 and 3, a
melody of sine partials, and a crescendo over the second half so the conductor's left-hand cue shows. The same
generator writes the other meters (2/4, 4/4 and 6/8, beaten in 2 with eighth-note chords) and tempo ramps
(``end_bpm``), which the conductor's meter evaluation uses as held-out pieces (docs/conductor.md).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from models.atomic import temp_beside

SAMPLE_RATE = 22050
#: Chord roots (MIDI) per bar: I - vi - IV - V, repeated.
_PROGRESSION = (57, 54, 50, 52)
_MELODY = (69, 73, 76, 74, 73, 71, 69, 71, 73, 74, 76, 78, 76, 74, 73, 71)


def _tone(freq: float, seconds: float, sr: int, decay: float, partials: int = 4) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    wave = sum(np.sin(2 * np.pi * freq * k * t) / k**1.5 for k in range(1, partials + 1))
    attack = np.minimum(1.0, t / 0.01)
    return (wave * attack * np.exp(-t / decay)).astype(np.float64)


def _midi(note: int) -> float:
    return 440.0 * 2.0 ** ((note - 69) / 12.0)


def demo_beat_times(seconds: float = 16.0, bpm: float = 112.0, end_bpm: float | None = None) -> np.ndarray:
    """Times (s) of the conducted pulses of :func:`synthesize_demo_piece`: ``bpm`` at the start, changing linearly
    per pulse to ``end_bpm`` at the end (constant when ``None``); every pulse that ends by ``seconds``."""
    if end_bpm is None or end_bpm == bpm:
        return np.arange(int(seconds / (60.0 / bpm))) * (60.0 / bpm)
    times, t = [], 0.0
    while True:
        period = 60.0 / (bpm + (float(end_bpm) - bpm) * min(1.0, t / seconds))
        if t + period > seconds:
            return np.asarray(times, dtype=np.float64)
        times.append(t)
        t += period


def synthesize_demo_piece(seconds: float = 16.0, bpm: float = 112.0, meter: int = 3,
                          sample_rate: int = SAMPLE_RATE, end_bpm: float | None = None) -> np.ndarray:
    """The demo piece: ``(N,)`` float32 mono in [-1, 1] at ``sample_rate`` Hz.

    Args:
        seconds: length.
        bpm: pulses per minute at the start (quarter notes; dotted quarters when ``meter`` is 6).
        meter: 2, 3 or 4 (x/4), or 6 (6/8: two pulses per bar, each of three eighth-note chords).
        end_bpm: tempo at the end (a linear ramp per pulse); ``None`` keeps ``bpm``. Pulse times:
            :func:`demo_beat_times`.

    Raises:
        ValueError: for a non-positive length or tempo, or a meter other than 2, 3, 4 or 6.
    """
    if seconds <= 0 or bpm <= 0 or meter not in (2, 3, 4, 6) or (end_bpm is not None and end_bpm <= 0):
        raise ValueError(f"need seconds > 0, bpm > 0, end_bpm > 0 and meter in (2, 3, 4, 6); got {seconds}, {bpm}, "
                         f"{end_bpm}, {meter}")
    total = int(seconds * sample_rate)
    out = np.zeros(total + sample_rate * 2)
    pulses = demo_beat_times(seconds, bpm, end_bpm)
    per_bar = 2 if meter == 6 else meter
    for i, onset in enumerate(pulses):
        beat = (pulses[i + 1] if i + 1 < len(pulses) else onset + 60.0 / (end_bpm or bpm)) - onset
        start = int(onset * sample_rate)
        bar, pos = divmod(i, per_bar)
        root = _PROGRESSION[bar % len(_PROGRESSION)]
        swell = 0.55 + 0.45 * min(1.0, max(0.0, (onset - seconds * 0.45) / (seconds * 0.4)))
        if meter == 6:  # 6/8: bass on both pulses (the second softer), chords on the three eighths
            note = _tone(_midi(root - 12 + (7 if pos else 0)), beat * 0.9, sample_rate, 0.4, partials=6)
            note *= 0.9 if pos == 0 else 0.5
            if pos == 0:
                kick = _tone(60.0, 0.15, sample_rate, 0.04, partials=1) * 0.6
                note[: len(kick)] += kick
            for e in range(3):
                chord = sum(_tone(_midi(root + k), beat / 3 * 0.9, sample_rate, 0.12) for k in (12, 16, 19))
                at = int(e * beat / 3 * sample_rate)
                note[at : at + len(chord)] += chord[: max(0, len(note) - at)] * (0.2 if e == 0 else 0.13)
        elif pos == 0:
            note = _tone(_midi(root - 12), beat * 1.8, sample_rate, 0.5, partials=6) * 0.9
            kick = _tone(60.0, 0.15, sample_rate, 0.04, partials=1) * 0.6  # soft kick on the downbeat
            note[: len(kick)] += kick
        else:
            note = sum(_tone(_midi(root + k), beat * 0.9, sample_rate, 0.18) for k in (12, 16, 19)) * 0.22
        melody = _tone(_midi(_MELODY[i % len(_MELODY)]), beat * 1.1, sample_rate, 0.35, partials=3) * 0.35
        segment = note.copy()
        length = min(len(segment), len(melody))
        segment[:length] += melody[:length]
        segment *= swell
        out[start : start + len(segment)] += segment
    out = out[:total]
    fade = int(0.3 * sample_rate)
    out[-fade:] *= np.linspace(1.0, 0.0, fade)
    return (0.8 * out / np.abs(out).max()).astype(np.float32)


def write_demo_piece(path: str | os.PathLike, **kwargs) -> Path:
    """Write :func:`synthesize_demo_piece` as 16-bit WAV atomically. Returns the path."""
    import soundfile

    path = Path(path)
    tmp = temp_beside(path, ".tmp.wav")
    try:
        soundfile.write(tmp, synthesize_demo_piece(**kwargs), kwargs.get("sample_rate", SAMPLE_RATE),
                        subtype="PCM_16", format="WAV")  # fmt: skip
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
