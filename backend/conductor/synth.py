"""A short piece Baton synthesises itself for ``baton demo`` (numpy only; no third-party audio is shipped).

A waltz-like progression in 3/4 at 112 BPM: a bass note on every downbeat, soft chords on beats 2 and 3, a
melody of sine partials, and a crescendo over the second half so the conductor's left-hand cue shows.
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


def synthesize_demo_piece(seconds: float = 16.0, bpm: float = 112.0, meter: int = 3,
                          sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """The demo piece: ``(N,)`` float32 mono in [-1, 1] at ``sample_rate`` Hz.

    Raises:
        ValueError: for a non-positive length or tempo, or a meter other than 2, 3 or 4.
    """
    if seconds <= 0 or bpm <= 0 or meter not in (2, 3, 4):
        raise ValueError(f"need seconds > 0, bpm > 0 and meter in (2, 3, 4); got {seconds}, {bpm}, {meter}")
    total = int(seconds * sample_rate)
    out = np.zeros(total + sample_rate * 2)
    beat = 60.0 / bpm
    beats = int(seconds / beat)
    for i in range(beats):
        start = int(i * beat * sample_rate)
        bar, pos = divmod(i, meter)
        root = _PROGRESSION[bar % len(_PROGRESSION)]
        swell = 0.55 + 0.45 * min(1.0, max(0.0, (i * beat - seconds * 0.45) / (seconds * 0.4)))
        if pos == 0:
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
